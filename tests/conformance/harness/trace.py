"""Reads a recording rec/<Class>.jsonl (written by shadow/EddyRec through the logging
shadows of TopologyTestDriver and MockApiProcessor, with test boundaries from
shadow/EddyListener) and groups its events per test.

  tests(path) -> [{'name', 'uid', 'status', 'err', 'events': [...]}, ...]

Command line: python3 trace.py rec/X.jsonl [name-filter]   prints a readable trace.
(gen.py imports this file as `trace`; run gen.py from this folder so that it
shadows Python's standard `trace` module.)"""
import json, sys

def tests(path):
    out, cur = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            e = json.loads(line)
            if e['ev'] == 'TEST_START':
                cur = {'name': e['name'], 'uid': e['uid'], 'status': None, 'err': None, 'events': []}
            elif e['ev'] == 'TEST_END':
                if cur is not None and cur['name'] == e['name']:
                    cur['status'] = e['status']; cur['err'] = e.get('err')
                    out.append(cur)
                cur = None
            elif cur is not None:
                cur['events'].append(e)
    return out

def fmt_key(k):
    if isinstance(k, dict) and k.get('windowed'):
        return '%s@[%s,%s]' % (json.dumps(k['key']), k['start'], k['end'])
    return json.dumps(k)

def fmt(e):
    ev = e['ev']
    if ev in ('IN', 'OUT'):
        return '%-5s %-12s %s -> %s @%s' % (ev, e['topic'], fmt_key(e['key']), json.dumps(e['value']), e['timestamp'])
    if ev == 'PROC':
        return '  PROC#%s %s -> %s @%s' % (e['proc'], fmt_key(e['key']), json.dumps(e['value']), e['timestamp'])
    if ev == 'CHECK':
        return 'CHECK#%s expected %d: %s' % (e['proc'], len(e['expected']), ', '.join('%s->%s@%s' % (fmt_key(x['key']), json.dumps(x['value']), x['timestamp']) for x in e['expected']))
    if ev == 'WALL':
        return 'WALL  +%s ms' % e['ms']
    return json.dumps(e)

if __name__ == '__main__':
    flt = sys.argv[2] if len(sys.argv) > 2 else None
    for t in tests(sys.argv[1]):
        if flt and flt not in t['name'] and flt not in t['uid']:
            continue
        print('=== %s  [%s]  %s' % (t['name'], t['status'], t['uid']))
        if t['err']:
            print('    ERROR: ' + t['err'])
        for e in t['events']:
            print('    ' + fmt(e))
