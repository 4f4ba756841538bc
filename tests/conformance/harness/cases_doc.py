import json
DOC = ('apache/kafka docs/streams/developer-guide/dsl-api.html (trunk 4.0.0-SNAPSHOT, commit 1eb7644349cb, 2024-10-25), '
       'published as https://kafka.apache.org/documentation/streams/developer-guide/dsl-api.html#joining , table ')
SS = [(1,'L',None),(2,'R',None),(3,'L','A'),(4,'R','a'),(5,'L','B'),(6,'R','b'),(7,'L',None),(8,'R',None),(9,'L','C'),(10,'R','c'),
      (11,'R',None),(12,'L',None),(13,'R',None),(14,'R','d'),(15,'L','D'),(40,'L','E'),(60,'L','F'),(80,'R','f'),(100,'L','G')]
TT = SS[:15]
# what the doc tables list (timestamp-row -> outputs), transcribed from the HTML
DOC_SS = {
 'inner': {4:['[A, a]'],5:['[B, a]'],6:['[A, b]','[B, b]'],9:['[C, a]','[C, b]'],10:['[A, c]','[B, c]','[C, c]'],14:['[A, d]','[B, d]','[C, d]'],15:['[D, a]','[D, b]','[D, c]','[D, d]']},
}
DOC_SS['left'] = dict(DOC_SS['inner']); DOC_SS['left'].update({60:['[E, null]'],80:['[F, null]']})
DOC_SS['outer'] = dict(DOC_SS['left']); DOC_SS['outer'].update({100:['[null, f]']})
DOC_TT = {
 'inner': {4:['[A, a]'],5:['[B, a]'],6:['[B, b]'],7:[None],10:['[C, c]'],11:[None],15:['[D, d]']},
 'left': {3:['[A, null]'],4:['[A, a]'],5:['[B, a]'],6:['[B, b]'],7:[None],9:['[C, null]'],10:['[C, c]'],11:['[C, null]'],12:[None],15:['[D, d]']},
 'outer': {3:['[A, null]'],4:['[A, a]'],5:['[B, a]'],6:['[B, b]'],7:['[null, b]'],8:[None],9:['[C, null]'],10:['[C, c]'],11:['[C, null]'],12:[None],14:['[null, d]'],15:['[D, d]']},
}
DOC_ST = {'inner': {5:['[B, a]'],15:['[D, d]']}, 'left': {3:['[A, null]'],5:['[B, a]'],9:['[C, null]'],15:['[D, d]']}}

obs = [json.loads(l) for l in open('replay/doc.jsonl')]
def observed(kind):
    return [{'key': o['key'], 'value': o['value'], 'timestamp': o['timestamp'], 'caused-by': o['caused-by']} for o in obs if o['kind'] == kind]
def inputs(rows):
    return [{'topic': 'left' if s == 'L' else 'right', 'key': 'k', 'value': v, 'timestamp': t * 1000} for t, s, v in rows]
def doclist(d):
    return ', '.join('row %d -> %s' % (t, ' '.join('null (tombstone)' if x is None else x for x in v)) for t, v in sorted(d.items()))

JOINER = 'the doc shows the arguments passed to the ValueJoiner as [left, right]; encoded as joiner (l, r) -> "[" + l + ", " + r + "]" so a missing side prints "null"'
TSNOTE = 'doc-expected lists, per doc row (row-timestamp-ms = that row\'s timestamp), the results the doc table shows for this join. The doc table\'s "Timestamp" column is encoded as seconds (timestamp-ms = value * 1000) because the doc states the stream-stream window in seconds; all records have the same key (the doc omits it; encoded as "k") and are processed in timestamp order. Null-value rows are encoded as value: null (tombstones for tables, dropped records for streams).'
REPLAY = 'expected = what kafka-streams 4.0.0 actually produced when these inputs were replayed with TopologyTestDriver (harness/replay/DocTables.java, record cache disabled, output read after every input; caused-by = 0-based index of the input that produced it).'

CASES = []
for j in ('inner', 'left', 'outer'):
    ex = observed('ss-' + j)
    docl = DOC_SS[j]
    # compare
    mism = (j != 'inner')
    note = ('Doc says: "We assume a join window size of 15 seconds with a grace period of 5 seconds", i.e. JoinWindows.ofTimeDifferenceAndGrace(15s, 5s) (before = after = 15 s). ' + TSNOTE + ' ' + REPLAY +
            ' Doc table column for this join: ' + doclist(docl) + '.')
    if mism:
        note += (' DISCREPANCY: the doc shows [E, null] at row 60 and [F, null] at row 80' + (' and [null, f] at row 100' if j == 'outer' else '') +
                 ', but Kafka 4.0.0 emits a non-joined record only once stream time is STRICTLY greater than its timestamp + after (or before, for right-side records) + grace '
                 '(KStreamKStreamJoin.isOuterJoinWindowOpen: minTime + lookBack + grace >= streamTime means still open). So [E, null] (E@40s, closes 60s) is emitted at row 80, [F, null] (F@60s) at row 100'
                 + (', and [null, f] (f@80s) is never emitted within this input' if j == 'outer' else '') +
                 '. Delayed results carry the timestamp of the unmatched record itself (40000, 60000), not the stream time. expected follows Kafka; doc-expected lists the doc version.')
    docexp = []
    for t, vals in sorted(docl.items()):
        for v in vals:
            docexp.append({'row-timestamp-ms': t * 1000, 'value': v})
    CASES.append({'family': 'doc-join-semantics', 'name': 'doc-stream-stream-' + j,
        'source': DOC + '"Semantics of stream-stream joins" (' + ('(INNER) JOIN' if j == 'inner' else j.upper() + ' JOIN') + ' column)',
        'kafka-version': 'doc text from trunk 4.0.0-SNAPSHOT (2024-10-25); expected output observed with kafka-streams 4.0.0',
        'description': 'Developer-guide stream-stream %s join table: 19 rows, one key, window 15 s, grace 5 s.' % j,
        'operation': 'stream-stream-join', 'join': j,
        'window': {'type': 'join', 'before-ms': 15000, 'after-ms': 15000, 'grace-ms': 5000},
        'joiner': JOINER, 'serdes': 'keys String, values String', 'caching': 'disabled (statestore.cache.max.bytes=0); irrelevant for stream-stream joins',
        'static-inputs': inputs(SS), 'static-expected': ex, 'doc-expected': docexp, 'notes': note, 'format-note': ''})
for j in ('inner', 'left', 'outer'):
    docexp = [{'row-timestamp-ms': t * 1000, 'value': v} for t, vals in sorted(DOC_TT[j].items()) for v in vals]
    CASES.append({'family': 'doc-join-semantics', 'name': 'doc-table-table-' + j,
        'source': DOC + '"Semantics of table-table equi-joins" (' + ('(INNER) JOIN' if j == 'inner' else j.upper() + ' JOIN') + ' column)',
        'kafka-version': 'doc text from trunk 4.0.0-SNAPSHOT (2024-10-25); expected output observed with kafka-streams 4.0.0',
        'description': 'Developer-guide KTable-KTable %s join table: 15 rows, one key, with tombstones on both sides.' % j,
        'operation': 'table-table-join', 'join': j, 'joiner': JOINER, 'serdes': 'keys String, values String',
        'caching': 'disabled (statestore.cache.max.bytes=0) so every update is forwarded',
        'static-inputs': inputs(TT), 'static-expected': observed('tt-' + j), 'doc-expected': docexp,
        'notes': 'Topology: builder.table(left).' + {'inner': 'join', 'left': 'leftJoin', 'outer': 'outerJoin'}[j] + '(builder.table(right), joiner).toStream().to(output). ' + TSNOTE + ' ' + REPLAY +
                 ' Kafka 4.0.0 output matches the doc table exactly (value: null = output tombstone). Output timestamp = max(left ts, right ts) of the joined rows (here equal to the triggering record\'s timestamp because inputs are in timestamp order).',
        'format-note': ''})
for j in ('inner', 'left'):
    docexp = [{'row-timestamp-ms': t * 1000, 'value': v} for t, vals in sorted(DOC_ST[j].items()) for v in vals]
    CASES.append({'family': 'doc-join-semantics', 'name': 'doc-stream-table-' + j,
        'source': DOC + '"Semantics of stream-table joins" (' + ('(INNER) JOIN' if j == 'inner' else 'LEFT JOIN') + ' column)',
        'kafka-version': 'doc text from trunk 4.0.0-SNAPSHOT (2024-10-25); expected output observed with kafka-streams 4.0.0',
        'description': 'Developer-guide KStream-KTable %s join table: only stream-side records trigger output; table updates and stream null values produce nothing.' % j,
        'operation': 'stream-table-join', 'join': j, 'joiner': JOINER, 'serdes': 'keys String, values String',
        'caching': 'disabled (statestore.cache.max.bytes=0)',
        'static-inputs': inputs(TT), 'static-expected': observed('st-' + j), 'doc-expected': docexp,
        'notes': 'Topology: builder.stream(left).' + ('join' if j == 'inner' else 'leftJoin') + '(builder.table(right), joiner).to(output); the table is not versioned and no grace is used. ' + TSNOTE + ' ' + REPLAY +
                 ' Kafka 4.0.0 output matches the doc table exactly. Output timestamp = the stream record\'s timestamp.',
        'format-note': ''})
