# Adds lock entries for @biomejs/cli-* platform packages the npm mirror here does not serve, so `npm ci`
# (which wants every optional platform package listed) accepts the lock file. They never install on linux-x64.
import json, sys
p = sys.argv[1]
lock = json.load(open(p))
pk = lock['packages']
base = pk['node_modules/@biomejs/cli-linux-x64']
plats = {
  'android-arm64': ('android', 'arm64', None), 'android-x64': ('android', 'x64', None),
  'darwin-arm64': ('darwin', 'arm64', None), 'darwin-x64': ('darwin', 'x64', None),
  'linux-arm64': ('linux', 'arm64', 'glibc'), 'linux-arm64-musl': ('linux', 'arm64', 'musl'),
  'linux-x64-musl': ('linux', 'x64', 'musl'), 'win32-arm64': ('win32', 'arm64', None), 'win32-x64': ('win32', 'x64', None),
}
added = []
for name, (os_, cpu, libc) in plats.items():
  key = f'node_modules/@biomejs/cli-{name}'
  if key in pk: continue
  e = {'version': base['version'], 'cpu': [cpu], 'dev': True, 'license': base.get('license'), 'optional': True, 'os': [os_]}
  if libc: e['libc'] = [libc]
  if 'engines' in base: e['engines'] = base['engines']
  pk[key] = e
  added.append(name)
lock['packages'] = dict(sorted(pk.items(), key=lambda kv: (kv[0] != '', kv[0])))
json.dump(lock, open(p, 'w'), indent=2)
open(p, 'a').write('\n')
print('added', added)
