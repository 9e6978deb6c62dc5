/**
 * The README's 60-second tour, run as written: its shell block is extracted from README.md, the first line
 * (`npm start`) becomes a fresh dev agent, the fixed ports (8500 HTTP, 8600 DNS, 8080 backend) become free
 * ones, and the rest runs in one bash, in order. Each command's output is checked against what its comment
 * promises, so the README cannot drift: a command this test does not know fails it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type AgentProcess, REPO_ROOT, spawnAgent } from '../helpers/agent.ts';
import { DOCKER_CLI, dockerSkip, startDockerd } from '../helpers/docker.ts';
import { infraImages, infraImagesSkip } from '../helpers/infra-images.ts';
import { assertExampleSummary, passedRow } from '../helpers/monorepo.ts';

/** The tour's commands: blank and comment lines dropped, a multi-line quoted argument kept whole. */
export function tourCommands(readme: string): string[] {
  const start = readme.indexOf('## A 60-second tour');
  assert.ok(start >= 0, 'README.md has no "A 60-second tour" section');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start));
  assert.ok(block?.[1], 'the tour has no ```sh block');
  const commands: string[] = [];
  let current = '';
  for (const line of block[1].split('\n')) {
    if (!current && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    current = current ? `${current}\n${line}` : line;
    // inside a single-quoted argument until the quotes balance
    if ((current.match(/'/g) ?? []).length % 2 === 0) {
      commands.push(current);
      current = '';
    }
  }
  assert.equal(current, '', 'the tour ends inside a quoted argument');
  return commands;
}

/** The comment a command ends with (what it promises), without the `#`. */
function promise(command: string): string {
  const m = / {2,}# (.*)$/.exec(command.split('\n').at(-1) ?? '');
  return m?.[1]?.trim() ?? '';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

let agent: AgentProcess | undefined;
after(() => {
  agent?.child.kill('SIGKILL');
});

test('the README tour works as written, each command doing what its comment says', async () => {
  const commands = tourCommands(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  const first = commands.shift() ?? '';
  assert.match(first, /^npm ci && npm start\b/, 'the tour starts the agent with npm start');

  // `npm start` = `phare agent --dev`, here on free ports instead of 8500/8600.
  agent = await spawnAgent(['--dev', '--http-addr', '127.0.0.1:0', '--dns-addr', '127.0.0.1:0']);
  const dnsPort = Number(/DNS: +127\.0\.0\.1:(\d+)/.exec(agent.output())?.[1]);
  assert.ok(dnsPort > 0, `the agent printed its DNS address: ${agent.output()}`);
  const webPort = await freePort();
  const ports = (s: string) =>
    s
      .replace(/\b8500\b/g, String(agent?.port))
      .replace(/\b8600\b/g, String(dnsPort))
      .replace(/\b8080\b/g, String(webPort));

  // One bash runs the steps in order (variables and background jobs carry over); markers split the output.
  // xdg-open is the one command with no place in a test: it fetches the page it would open instead.
  let script = 'xdg-open() { curl -sf -o /dev/null "$1" && echo "opened $1"; }\n';
  commands.forEach((c, i) => {
    script += `echo "@@step ${i}"\n${ports(c)}\nrc=$?; echo; echo "@@rc $rc"\n`;
  });
  script += 'wait\necho "@@end"\n';
  let errors = '';
  const output = await new Promise<string>((resolve, reject) => {
    const bash = spawn('bash', ['-c', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    bash.stdout.on('data', (d) => {
      out += String(d);
    });
    // stderr (curl's progress meter when its output is not a terminal) is kept apart, for failure messages
    bash.stderr.on('data', (d) => {
      errors += String(d);
    });
    const timer = setTimeout(() => {
      bash.kill('SIGKILL');
      reject(new Error(`the tour did not finish within 60 s:\n${out}`));
    }, 60_000);
    bash.once('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
  assert.match(output, /@@end/, output);

  const steps = output.split(/^@@step \d+\n/m).slice(1);
  assert.equal(steps.length, commands.length, output);
  const seen = new Set<string>();
  commands.forEach((raw, i) => {
    const command = ports(raw);
    const step = steps[i] ?? '';
    const rc = Number(/^@@rc (\d+)$/m.exec(step)?.[1]);
    const out = step
      .replace(/^@@rc \d+\n[\s\S]*$/m, '')
      .replace(/^blocking query answered: \d+\n/m, '')
      .trim();
    const say = `step ${i}: ${raw}\n--- output ---\n${step}\n--- the tour's stderr ---\n${errors.slice(-2000)}`;
    assert.equal(rc, 0, `${say}\n(exit code)`);
    const comment = promise(raw);
    const json = () => JSON.parse(out) as unknown;
    const instances = () => (json() as { Service: { ID: string } }[]).map((e) => e.Service.ID);

    let kind: string;
    if (/^python3 -m http\.server/.test(command)) kind = 'backend';
    else if (/agent\/service\/register/.test(command)) kind = 'register';
    else if (/^sleep \d+/.test(command)) kind = 'sleep';
    else if (
      /^until curl -s '[^']*health\/service\/web\?passing' \| grep -q web-1; do sleep [\d.]+; done$/.test(
        command.replace(/ +#.*$/, ''),
      )
    )
      kind = 'sleep';
    else if (/\/v1\/catalog\/services\b/.test(command)) kind = 'services';
    else if (/^curl -I /.test(command)) kind = 'head';
    else if (/^idx=/.test(command)) kind = 'index';
    else if (/index=\$idx&wait=/.test(command)) kind = 'blocking';
    else if (/agent\/check\/register/.test(command)) kind = 'ttl-register';
    else if (/agent\/check\/pass\//.test(command)) kind = 'ttl-pass';
    else if (/health\/service\/web\?filter=/.test(command)) kind = 'filter';
    else if (/health\/service\/web\?passing/.test(command)) kind = 'passing';
    else if (/^dig /.test(command)) kind = 'dig';
    else if (/^xdg-open /.test(command)) kind = 'ui';
    else if (/agent\/metrics\?format=prometheus/.test(command)) kind = 'metrics';
    else if (/agent\/service\/deregister\//.test(command)) kind = 'deregister';
    else if (/^kill \$web_pid$/.test(command)) kind = 'kill';
    else
      assert.fail(
        `the README tour has a command this test does not know; teach the test what it promises:\n${raw}`,
      );
    seen.add(kind);

    switch (kind) {
      case 'backend':
      case 'index':
      case 'blocking':
      case 'ttl-pass':
      case 'kill':
        assert.equal(out, '', say);
        break;
      case 'register':
      case 'ttl-register':
      case 'deregister':
        assert.equal(out, '', say); // Consul answers these with an empty 200
        break;
      case 'sleep':
        break;
      case 'services':
        assert.deepEqual(json(), JSON.parse(comment), say);
        break;
      case 'head':
        assert.match(out, /^HTTP\/1\.1 200/, say);
        assert.match(out, /^x-consul-index: \d+\r?$/im, say);
        assert.doesNotMatch(out, /\[\s*\{/, `${say}\n(a HEAD answer has no body)`);
        break;
      case 'filter':
        assert.deepEqual(instances(), ['web-1'], say);
        break;
      case 'passing':
        if (/^\[\]/.test(comment)) assert.deepEqual(json(), [], say);
        else {
          assert.deepEqual(instances(), ['web-1'], say);
          for (const e of json() as { Checks: { Status: string }[] }[])
            for (const c of e.Checks) assert.equal(c.Status, 'passing', say);
        }
        break;
      case 'dig':
        assert.match(out.trim(), new RegExp(`^1 1 ${webPort} [\\w.-]+\\.node\\.dc1\\.consul\\.$`), say);
        break;
      case 'ui':
        assert.equal(out.trim(), `opened http://127.0.0.1:${agent?.port}/ui/`, say);
        break;
      case 'metrics':
        assert.ok(Number(out.trim()) > 10, say);
        break;
    }
  });
  for (const kind of ['services', 'passing', 'head', 'blocking', 'ttl-register', 'dig', 'ui', 'deregister'])
    assert.ok(seen.has(kind), `the tour lost its "${kind}" step`);

  // The blocking query really blocked: it answered after the TTL check was registered, not before.
  const registerStep = commands.findIndex((c) => /agent\/check\/register/.test(c));
  const answeredIn = steps.findIndex((s) => /^blocking query answered: 200$/m.test(s));
  assert.ok(answeredIn >= 0, `the blocking query never answered:\n${output}`);
  assert.ok(
    answeredIn >= registerStep,
    `the blocking query answered before anything changed (step ${answeredIn})`,
  );
  // …and deregistration removed the service.
  const services = (await (await fetch(`${agent.url}/v1/catalog/services`)).json()) as Record<
    string,
    unknown
  >;
  assert.deepEqual(Object.keys(services), ['consul']);
});

/** The monorepo tour's commands (README "Testing a monorepo"), comment lines dropped. */
function monorepoCommands(readme: string): string[] {
  const start = readme.indexOf('## Testing a monorepo');
  assert.ok(start >= 0, 'README.md has no "Testing a monorepo" section');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start));
  assert.ok(block?.[1], 'the monorepo section has no ```sh block');
  return block[1].split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

const engineSkip = dockerSkip() || infraImagesSkip();

test('the README monorepo tour works as written on a real engine', { skip: engineSkip }, async () => {
  const commands = monorepoCommands(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  const engine = await startDockerd();
  try {
    await infraImages(engine);
    // `npx phare` is this checkout's CLI (from source, without npx's start-up)
    let script = `npx() { if [ "$1" = phare ]; then shift; "${process.execPath}" --conditions=phare-source "${join(REPO_ROOT, 'bin', 'phare.js')}" "$@"; else command npx "$@"; fi; }\n`;
    commands.forEach((c, i) => {
      script += `echo "@@step ${i}"\n${c}\nrc=$?; echo; echo "@@rc $rc"\n`;
    });
    const output = await new Promise<string>((resolve, reject) => {
      const bash = spawn('bash', ['-c', script], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          NODE_TEST_CONTEXT: undefined,
          DOCKER_HOST: engine.endpoint,
          PHARE_DOCKER_CLI: DOCKER_CLI,
        },
      });
      let out = '';
      bash.stdout.on('data', (d) => {
        out += String(d);
      });
      bash.stderr.on('data', (d) => {
        out += String(d);
      });
      const timer = setTimeout(() => {
        bash.kill('SIGKILL');
        reject(new Error(`the monorepo tour did not finish within 240 s:\n${out}`));
      }, 240_000);
      bash.once('exit', () => {
        clearTimeout(timer);
        resolve(out);
      });
    });
    const steps = output.split(/^@@step \d+\n/m).slice(1);
    assert.equal(steps.length, commands.length, output);
    const row = passedRow;
    commands.forEach((command, i) => {
      const step = steps[i] ?? '';
      const say = `step ${i}: ${command}\n--- output ---\n${step}`;
      assert.equal(Number(/^@@rc (\d+)$/m.exec(step)?.[1]), 0, `${say}\n(exit code)`);
      const c = command.replace(/ {2,}#.*$/, '');
      if (c === 'cd examples/monorepo') return;
      if (c === 'npx phare test bus') {
        assert.match(step, row('bus', 'unit', 'host'), say);
        assert.match(step, row('bus', 'integration', 'host'), say);
        assert.doesNotMatch(step, /project|docker/i, say);
      } else if (c === 'npx phare test --parallel 3') {
        assertExampleSummary(step, say);
      } else if (c === 'npx phare infra up notes') {
        assert.match(
          step,
          /^postgres\s+postgresql:\/\/notes:dev_password@127\.0\.0\.1:\d+\/notes_dev$/m,
          say,
        );
        assert.match(
          step,
          /^export DATABASE_URL="postgresql:\/\/notes:dev_password@127\.0\.0\.1:\d+\/notes_dev"$/m,
          say,
        );
      } else if (c === 'npx phare infra down notes --volumes') {
        assert.match(step, /Removing notes-dev_postgres_1/, say);
      } else
        assert.fail(`the README monorepo tour has a command this test does not know; teach it:\n${command}`);
    });
    // the tour leaves nothing behind: no container, network or volume of any run or of notes-dev
    for (const kind of [
      ['ps', '-a'],
      ['network', 'ls'],
      ['volume', 'ls'],
    ])
      assert.equal(
        await engine.docker(...kind, '-q', '--filter', 'label=com.docker.compose.project'),
        '',
        `${kind.join(' ')} after the tour`,
      );
  } finally {
    await engine.close();
  }
});
