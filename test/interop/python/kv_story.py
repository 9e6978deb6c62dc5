"""KV, sessions and locks through Debian's python3-consul 0.7.1 (the client Patroni uses) against a Phare agent.

Usage: kv_story.py <agent-url> [<second-agent-url>]. The second client talks to the second agent (a cluster:
test/cluster/interop.test.ts), else to the same one. Prints one JSON object of what the clients saw;
kv-python-story.ts asserts it.
"""
import json
import sys
import threading
import time
from urllib.parse import urlparse

import consul

out = {}


def client(arg):
    url = urlparse(arg)
    return consul.Consul(host=url.hostname, port=url.port)


c = client(sys.argv[1])
c2 = client(sys.argv[2] if len(sys.argv) > 2 else sys.argv[1])

# binary values, flags, recurse, keys with a separator
blob = bytes(range(256))
out['put_bin'] = c.kv.put('py/bin', blob, flags=42)
index, e = c.kv.get('py/bin')
out['bin_roundtrip'] = e['Value'] == blob
out['bin_flags'] = e['Flags']
out['index_positive'] = int(index) > 0
c.kv.put('py/cfg/a', 'A')
c.kv.put('py/cfg/b', 'B')
_, tree = c.kv.get('py/', recurse=True)
out['recurse_keys'] = [x['Key'] for x in tree]
_, keys = c.kv.get('py/', keys=True, separator='/')
out['keys_sep'] = keys
index, missing = c.kv.get('py/nope')
out['missing'] = [missing, int(index) > 0]

# cas races between two clients: exactly one of them wins each round
wins = []
for round_ in range(5):
    _, cur = c.kv.get('py/counter')
    mi = cur['ModifyIndex'] if cur else 0
    results = []
    barrier = threading.Barrier(2)

    def racer(cl, v):
        barrier.wait()
        results.append(cl.kv.put('py/counter', v, cas=mi))

    ts = [threading.Thread(target=racer, args=(cl, 'r%d-%d' % (round_, i))) for i, cl in enumerate((c, c2))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wins.append(sorted(results))
out['cas_rounds'] = wins

# a blocking get woken by another client's write (and not by writes elsewhere)
index, _ = c.kv.get('py/watched')
seen = {}


def watcher():
    t0 = time.time()
    i, v = c.kv.get('py/watched', index=index, wait='10s')
    seen['value'] = v['Value'].decode() if v else None
    seen['seconds'] = time.time() - t0


w = threading.Thread(target=watcher)
w.start()
time.sleep(0.3)
c2.kv.put('py/elsewhere', 'x')
time.sleep(0.3)
out['watch_still_waiting'] = w.is_alive()
c2.kv.put('py/watched', 'hello')
w.join(12)
out['watch_value'] = seen.get('value')
out['watch_fast'] = seen.get('seconds', 99) < 5

# sessions: create, info, renew, destroy, renew of a gone session
sid = c.session.create(name='py-s', ttl=30, behavior='delete', lock_delay=0, checks=[])
_, info = c.session.info(sid)
out['session_info'] = [info['Name'], info['TTL'], info['Behavior'], info['LockDelay']]
out['renew'] = c.session.renew(sid)['ID'] == sid
_, lst = c.session.list()
out['in_list'] = any(s['ID'] == sid for s in lst)
out['destroy'] = c.session.destroy(sid)
try:
    out['renew_gone'] = c.session.renew(sid)
except consul.base.NotFound:
    out['renew_gone'] = 'NotFound'

# a lock held by one client, taken over after its session is invalidated by a failing TTL check
c.agent.check.register('py-ttl', consul.Check.ttl('30s'))
c.agent.check.ttl_pass('py-ttl')
s1 = c.session.create(name='holder', checks=['serfHealth', 'py-ttl'], lock_delay=0)
s2 = c2.session.create(name='taker', checks=[], lock_delay=0)
out['lock_holder'] = c.kv.put('py/lock', 'holder', acquire=s1)
out['lock_taker_blocked'] = c2.kv.put('py/lock', 'taker', acquire=s2)
c.agent.check.ttl_fail('py-ttl', 'holder died')
taken = False
for _ in range(50):
    if c2.kv.put('py/lock', 'taker', acquire=s2):
        taken = True
        break
    time.sleep(0.05)
out['lock_taken_over'] = taken
_, lock = c.kv.get('py/lock')
out['lock_after'] = [lock['Value'].decode(), lock['Session'] == s2, lock['LockIndex']]
# on a cluster the first client's agent applies the invalidation from its own watch: give it a moment
for _ in range(40):
    _, holder_info = c.session.info(s1)
    if holder_info is None:
        break
    time.sleep(0.05)
out['holder_gone'] = holder_info is None
out['release'] = c2.kv.put('py/lock', 'free', release=s2)
out['delete_recurse'] = c.kv.delete('py/', recurse=True)
_, after = c.kv.get('py/', recurse=True)
out['after_delete'] = after
print(json.dumps(out))
