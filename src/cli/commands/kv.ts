import type { Command } from 'commander';
import { phareError } from '../../api/index.ts';
import { createConsulClient } from '../../index.ts';
import type { RegisterCommand } from '../io.ts';

/**
 * `phare kv get|put|delete`, shaped like Consul's CLI (developer.hashicorp.com/consul/commands/kv): the
 * same flags (`-recurse`, `-cas -modify-index=N`, `-flags=N`; one or two dashes), the same `Success!` and
 * `Error!` lines, exit 1 when nothing was read or written. The agent is `-http-addr`, else
 * PHARE_HTTP_ADDR / CONSUL_HTTP_ADDR, else 127.0.0.1:8500.
 */
export const register: RegisterCommand = (program: Command, io, state) => {
  const kv = program
    .command('kv')
    .description("read and write the agent's key/value store (Consul's `consul kv`)");
  const client = (opts: { httpAddr?: string }) =>
    createConsulClient({ env: io.env, ...(opts.httpAddr ? { address: opts.httpAddr } : {}) });
  const fail = (msg: string) => {
    io.stderr(`Error! ${msg}\n`);
    state.code = 1;
  };
  const modifyIndex = (v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v))
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `-modify-index: expected an integer, got "${v}"`);
    return Number(v);
  };

  kv.command('get')
    .description('print the value of KEY (with -recurse: "key:value" for every key under it)')
    .argument('[key]', 'the key', '')
    .option('--recurse', 'every key under the prefix')
    .option('--http-addr <addr>', 'the agent (host:port)')
    .action(async (key: string, opts: { recurse?: boolean; httpAddr?: string }) => {
      const c = client(opts);
      try {
        const { value } = await c.kv.get(key, { recurse: opts.recurse === true });
        if (!value || value.length === 0) return fail(`No key exists at: ${key}`);
        for (const e of opts.recurse ? value : value.slice(0, 1)) {
          const text = Buffer.from(e.Value ?? '', 'base64').toString('utf8');
          io.stdout(opts.recurse ? `${e.Key}:${text}\n` : `${text}\n`);
        }
      } finally {
        await c.close();
      }
    });

  kv.command('put')
    .description('write VALUE (or an empty value) at KEY')
    .argument('<key>', 'the key')
    .argument('[value]', 'the value', '')
    .option('--cas', 'check-and-set: write only if the key is at -modify-index (0 = absent)')
    .option('--modify-index <n>', 'the ModifyIndex -cas compares with')
    .option('--flags <n>', 'the uint64 flags stored with the value')
    .option('--http-addr <addr>', 'the agent (host:port)')
    .action(
      async (
        key: string,
        value: string,
        opts: { cas?: boolean; modifyIndex?: string; flags?: string; httpAddr?: string },
      ) => {
        const index = modifyIndex(opts.modifyIndex);
        if (opts.cas && index === undefined)
          throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'Must specify -modify-index with -cas!');
        const c = client(opts);
        try {
          const ok = await c.kv.put(key, value, {
            ...(opts.cas ? { cas: index } : {}),
            ...(opts.flags !== undefined ? { flags: Number(opts.flags) } : {}),
          });
          if (!ok) return fail(`Did not write to ${key}: CAS failed`);
          io.stdout(`Success! Data written to: ${key}\n`);
        } finally {
          await c.close();
        }
      },
    );

  kv.command('delete')
    .description('delete KEY (with -recurse: every key under it)')
    .argument('[key]', 'the key', '')
    .option('--recurse', 'every key under the prefix')
    .option('--cas', 'delete only if the key is at -modify-index')
    .option('--modify-index <n>', 'the ModifyIndex -cas compares with')
    .option('--http-addr <addr>', 'the agent (host:port)')
    .action(
      async (
        key: string,
        opts: { recurse?: boolean; cas?: boolean; modifyIndex?: string; httpAddr?: string },
      ) => {
        const index = modifyIndex(opts.modifyIndex);
        if (opts.cas && index === undefined)
          throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'Must specify -modify-index with -cas!');
        if (opts.cas && opts.recurse)
          throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'Cannot specify both -cas and -recurse!');
        if (!opts.recurse && key === '')
          throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'Missing KEY argument');
        const c = client(opts);
        try {
          const ok = await c.kv.delete(key, {
            recurse: opts.recurse === true,
            ...(opts.cas ? { cas: index } : {}),
          });
          if (!ok) return fail(`Did not delete key ${key}: CAS failed`);
          io.stdout(
            opts.recurse ? `Success! Deleted keys with prefix: ${key}\n` : `Success! Deleted key: ${key}\n`,
          );
        } finally {
          await c.close();
        }
      },
    );
};
