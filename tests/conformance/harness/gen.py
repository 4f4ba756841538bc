"""Builds /tmp/conformance/<family>/<case>.yaml from recordings (rec/*.jsonl) of Kafka 4.0.0's own
unit tests run with logging shadows, plus hand-written metadata (CASES in cases_*.py)."""
import json, os, sys, re
from trace import tests

OUT = os.environ.get('CONFORMANCE_OUT', '/tmp/conformance')  # then copy <family>/*.yaml into tests/conformance/
KAFKA_TEST_DIR = 'streams/src/test/java/org/apache/kafka/streams/kstream/internals/'

def q(v):
    """YAML flow scalar (JSON is valid YAML)."""
    if v is None: return 'null'
    if isinstance(v, bool): return 'true' if v else 'false'
    if isinstance(v, int): return str(v)
    return json.dumps(v, ensure_ascii=False)

def flow(d):
    return '{ ' + ', '.join('%s: %s' % (k, flowv(v)) for k, v in d.items()) + ' }'

def flowv(v):
    if isinstance(v, dict): return flow(v)
    if isinstance(v, list): return '[' + ', '.join(flowv(x) for x in v) + ']'
    return q(v)

def block(key, v, ind=0):
    sp = ' ' * ind
    if isinstance(v, dict):
        lines = [sp + key + ':']
        for k, x in v.items():
            lines += block(k, x, ind + 2)
        return lines
    if isinstance(v, str) and ('\n' in v or len(v) > 100):
        lines = [sp + key + ': >-']
        for para in v.split('\n'):
            lines.append(sp + '  ' + para)
        return lines
    return [sp + key + ': ' + q(v)]

def rec_value(v):
    """Recorded value -> yaml-ready fields (dict to merge)"""
    if isinstance(v, dict) and v.get('change'):
        return {'value': {'new': v['new'], 'old': v['old']}}
    return {'value': v}

def key_fields(k):
    if isinstance(k, dict) and k.get('windowed'):
        return {'key': k['key'], 'window-start': k['start'], 'window-end': k['end']}
    return {'key': k}

def select(cls, name_sub, uid_sub=None):
    found = [t for t in tests('rec/%s.jsonl' % cls) if name_sub in t['name'] and (uid_sub is None or (':' + uid_sub + '(') in t['uid'])]
    if len(found) != 1:
        raise SystemExit('selection %s/%s/%s matched %d' % (cls, name_sub, uid_sub, len(found)))
    t = found[0]
    if t['status'] != 'SUCCESSFUL':
        raise SystemExit('selection %s/%s/%s: the test did not pass (%s): %s' % (cls, name_sub, uid_sub, t['status'], t.get('err')))
    return t

def build(c):
    if 'static-inputs' in c:
        return c['static-inputs'], c['static-expected']
    t = select(c['rec'][0], c['rec'][1], c['rec'][2] if len(c['rec']) > 2 else None)
    evs = t['events']
    drv = c.get('driver', 0)
    # slice to the chosen driver
    starts = [i for i, e in enumerate(evs) if e['ev'] == 'DRIVER_START']
    lo = starts[drv]; hi = starts[drv + 1] if drv + 1 < len(starts) else len(evs)
    evs = evs[lo:hi]
    mode = c.get('mode', 'check')
    topicmap = c.get('topics', {})
    inputs, expected = [], []
    last_input = None
    cp = 0
    proc_seq = []   # (index of causing input, record)
    out_block = []
    def flush_out():
        nonlocal cp, out_block
        if out_block:
            cp += 1
            inputs.append({'checkpoint': cp})
            for e in out_block:
                r = key_fields(e['key']); r.update(rec_value(e['value'])); r['timestamp'] = e['timestamp']
                if c.get('show-out-topic'): r = dict({'topic': e['topic']}, **r)
                r['checkpoint'] = cp
                expected.append(r)
            out_block = []
    proc_filter = None
    for e in evs:
        ev = e['ev']
        if ev in ('IN', 'WALL'):
            flush_out()
            if ev == 'IN':
                r = {'topic': topicmap.get(e['topic'], e['topic'])}
                r.update({'key': e['key'], 'value': e['value'], 'timestamp': e['timestamp']})
                inputs.append(r)
            else:
                inputs.append({'advance-wall-clock-ms': e['ms']})
            last_input = len(inputs) - 1
        elif ev == 'OUT' and mode == 'out':
            if c.get('out-topic') and e['topic'] != c['out-topic']: continue
            out_block.append(e)
        elif ev == 'PROC' and mode in ('check', 'processed', 'proc-all'):
            if proc_filter is None and c.get('proc-from-first-check', True):
                pass
            proc_seq.append((e['proc'], last_input, e))
        elif ev == 'CHECK' and mode == 'check':
            if proc_filter is None: proc_filter = e['proc']
            if e['proc'] != proc_filter: continue
            cp += 1
            inputs.append({'checkpoint': cp})
            mine = [p for p in proc_seq if p[0] == proc_filter]
            proc_seq = [p for p in proc_seq if p[0] != proc_filter]
            exp = e['expected']
            if len(mine) != len(exp):
                raise SystemExit('%s: check %d expects %d but %d processed' % (c['name'], cp, len(exp), len(mine)))
            for (pid, idx, pe), x in zip(mine, exp):
                assert pe['key'] == x['key'] and pe['value'] == x['value'] and pe['timestamp'] == x['timestamp'], (c['name'], pe, x)
                r = key_fields(x['key']); r.update(rec_value(x['value'])); r['timestamp'] = x['timestamp']
                r['checkpoint'] = cp
                r['caused-by'] = idx
                expected.append(r)
        elif ev == 'PROCESSED_READ' and mode == 'processed':
            cp += 1
            inputs.append({'checkpoint': cp})
            for pid, idx, pe in proc_seq:
                r = key_fields(pe['key']); r.update(rec_value(pe['value'])); r['timestamp'] = pe['timestamp']
                r['checkpoint'] = cp
                r['caused-by'] = idx
                expected.append(r)
            proc_seq = []
    flush_out()
    if mode == 'proc-all':
        cp += 1
        inputs.append({'checkpoint': cp})
        for pid, idx, pe in proc_seq:
            r = key_fields(pe['key']); r.update(rec_value(pe['value'])); r['timestamp'] = pe['timestamp']
            r['checkpoint'] = cp; r['caused-by'] = idx
            expected.append(r)
    return inputs, expected

def write(c):
    inputs, expected = build(c)
    if 'postprocess' in c:
        inputs, expected = c['postprocess'](inputs, expected)
    fam = c['family']
    os.makedirs(os.path.join(OUT, fam), exist_ok=True)
    path = os.path.join(OUT, fam, c['name'] + '.yaml')
    L = []
    L += block('source', c['source'])
    L += block('kafka-version', c.get('kafka-version', '4.0.0 (tests from kafka-streams-4.0.0-test-sources.jar; identical behaviour observed by running them against kafka-streams 4.0.0)'))
    L += block('description', c['description'])
    L += block('operation', c['operation'])
    for k in ('join', 'window', 'suppress', 'emit-strategy', 'foreign-key-extractor', 'joiner', 'key-mapper', 'materialized', 'rejoin', 'aggregator', 'serdes', 'caching', 'config', 'topology'):
        if k in c: L += block(k, c[k])
    L.append('inputs:')
    for r in inputs: L.append('  - ' + flow(r))
    L.append('expected:' + ('' if expected else ' []'))
    for r in expected: L.append('  - ' + flow(r))
    if 'doc-expected' in c:
        L.append('doc-expected:')
        for r in c['doc-expected']: L.append('  - ' + flow(r))
    fn = c.get('format-note', FORMAT_NOTE[c.get('mode', 'check')])
    L += block('notes', c.get('notes', '') + ('\n' + fn if fn else ''))
    open(path, 'w').write('\n'.join(L) + '\n')
    return path, len(inputs), len(expected)

FORMAT_NOTE = {
 'check': "Format: '{ checkpoint: N }' entries in inputs mark where the test asserts the output (MockApiProcessor.checkAndClearProcessResult); every expected record carries the checkpoint it belongs to (a checkpoint with no records asserts that nothing was emitted since the previous one). 'caused-by' is the 0-based index into inputs of the input whose processing forwarded the record, observed by running the test against kafka-streams 4.0.0.",
 'processed': "Format: the test asserts the whole list of records captured by MockApiProcessorSupplier once, at the '{ checkpoint: N }' entry. 'caused-by' is the 0-based index into inputs of the input whose processing forwarded the record, observed by running the test against kafka-streams 4.0.0.",
 'proc-all': "Format: expected lists every record forwarded to the test's MockApiProcessor, all attached to one final checkpoint; 'caused-by' is the 0-based index into inputs of the input whose processing forwarded the record, observed by running the test against kafka-streams 4.0.0. See notes for what the test itself asserts.",
 'out': "Format: '{ checkpoint: N }' entries mark where the test reads the output topic (it reads everything emitted since the previous read); expected records carry their checkpoint. The test reads an output topic, so which input caused each record is not observed.",
}

if __name__ == '__main__':
    import importlib
    allcases = []
    for mod in sys.argv[1:]:
        m = importlib.import_module(mod)
        allcases += m.CASES
    for c in allcases:
        p, ni, ne = write(c)
        print('%-90s inputs=%d expected=%d' % (p, ni, ne))
