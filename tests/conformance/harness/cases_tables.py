from gen import KAFKA_TEST_DIR
P = 'apache/kafka ' + KAFKA_TEST_DIR
JOINER = 'MockValueJoiner.TOSTRING_JOINER: left + "+" + right (Java string concatenation; a missing side prints "null")'
TTD = 'TopologyTestDriver commits (and so flushes any record cache) after every input record.'

def st(cls, method, name, join, desc, notes='', driver=0, versioned=None):
    topics = {'streamTopic': 'stream', 'tableTopic': 'table', 'tableTopic2': 'table'}
    base = ('Topology (setUp): builder.stream("streamTopic", Consumed.with(Integer, String)).%s(builder.table("tableTopic", same consumed), TOSTRING_JOINER).process(MockApiProcessorSupplier); '
            'topics renamed stream/table here. Table records do not trigger output; output timestamp = stream record timestamp. '
            'Default StreamsTestUtils config (default record cache 10 MB). ' % ('join' if join == 'inner' else 'leftJoin')) + TTD
    if versioned:
        base = versioned + ' ' + TTD
    c = {'family': 'stream-table-join', 'name': name, 'rec': (cls, method + '()'), 'driver': driver,
         'source': P + cls + '.java#' + method + ' (Kafka 4.0.0)', 'description': desc,
         'operation': 'stream-table-join', 'join': join, 'joiner': JOINER,
         'serdes': 'keys Integer, values String (stream and table)', 'caching': 'default config (cache 10 MB), flushed after every record by TopologyTestDriver',
         'topics': topics, 'notes': (base + ' ' + notes).strip()}
    return c

RANDOM = 'pushToTable() uses random table-record timestamps (new Random(System.currentTimeMillis()).nextInt(Integer.MAX_VALUE)); the values recorded here are from one run and do not influence the output of this non-versioned join.'
VERS = ('Topology (makeJoin(Duration.ofMillis(2))): builder.table("tableTopic2", consumed, Materialized.as(Stores.persistentVersionedKeyValueStore("V-grace", Duration.ofMinutes(5)))); '
        'stream.join(table, TOSTRING_JOINER, Joined.with(Integer, String, String, "Grace", Duration.ofMillis(2))).process(supplier). '
        'With a grace period the stream side is buffered (by stream-side stream time) and each record is joined, using a timestamped lookup into the versioned table (latest table version with ts <= stream record ts), once stream time exceeds record ts + grace; a record that is already older than stream time - grace when it arrives is joined immediately. '
        'The test\'s setUp first builds a plain (non-versioned) driver that is never used; this file encodes the second driver created by makeJoin.')

CASES = [
 st('KStreamKTableJoinTest', 'shouldNotJoinWithEmptyTableOnStreamUpdates', 'inner-empty-table', 'inner', 'Stream records find no table row: inner stream-table join emits nothing.'),
 st('KStreamKTableJoinTest', 'shouldNotJoinOnTableUpdates', 'inner-table-updates-do-not-trigger', 'inner', 'Table updates never trigger output; each stream record joins the table value current at its processing time.', RANDOM),
 st('KStreamKTableJoinTest', 'shouldJoinOnlyIfMatchFoundOnStreamUpdates', 'inner-join-only-on-match', 'inner', 'Only stream records whose key exists in the table are joined.', RANDOM),
 st('KStreamKTableJoinTest', 'shouldClearTableEntryOnNullValueUpdates', 'inner-table-tombstone', 'inner', 'A table tombstone deletes the key: later stream records for that key produce no inner-join output; the tombstone itself emits nothing.', RANDOM),
 st('KStreamKTableJoinTest', 'shouldDelayJoinByGracePeriod', 'inner-versioned-table-grace', 'inner', 'Stream-table join with a versioned table and grace 2 ms: stream records are buffered until stream time passes ts + grace, then joined with the table version valid at their timestamp (so a later table update with an older timestamp is seen).', driver=1, versioned=VERS),
 st('KStreamKTableJoinTest', 'shouldHandleLateJoinsWithGracePeriod', 'inner-versioned-table-grace-late-record', 'inner', 'Versioned table, grace 2 ms: an out-of-order stream record older than stream time - grace is joined immediately without evicting buffered records.', driver=1, versioned=VERS),
 st('KStreamKTableLeftJoinTest', 'shouldJoinWithEmptyTableOnStreamUpdates', 'left-empty-table', 'left', 'Left stream-table join with an empty table emits (X, null) for every stream record.'),
 st('KStreamKTableLeftJoinTest', 'shouldNotJoinOnTableUpdates', 'left-table-updates-do-not-trigger', 'left', 'Left stream-table join: table updates never trigger output; stream records emit (X, tableValueOrNull).', RANDOM),
 st('KStreamKTableLeftJoinTest', 'shouldJoinRegardlessIfMatchFoundOnStreamUpdates', 'left-join-regardless-of-match', 'left', 'Left stream-table join emits for every stream record, with null for missing table rows.', RANDOM),
 st('KStreamKTableLeftJoinTest', 'shouldClearTableEntryOnNullValueUpdates', 'left-table-tombstone', 'left', 'After a table tombstone, left-join output for that key has a null right side.', RANDOM),
]

def tt(cls, method, name, join, desc, mode, oldvalues=None):
    op = {'inner': 'join', 'left': 'leftJoin', 'outer': 'outerJoin'}[join]
    if mode == 'out':
        topo = 'builder.table("topic1", Consumed.with(Integer, String)).%s(builder.table("topic2", same), TOSTRING_JOINER).toStream().to("output"); the test reads topic "output" with TestOutputTopic.' % op
        if 'Queryable' in method:
            topo = topo.replace('TOSTRING_JOINER)', 'TOSTRING_JOINER, Materialized.with(Integer, String))')
    else:
        topo = ('joined = table1.%s(table2, TOSTRING_JOINER)%s; builder.build().addProcessor("proc", MockApiProcessorSupplier, joined.name) captures the raw Change<new, old> records the join processor forwards (value: {new, old} here). %s'
                % (op, '; ((KTableImpl) joined).enableSendingOldValues(true)' if oldvalues else '',
                   'With sendOldValues enabled the old value is the previous join result for the key.' if oldvalues else 'Without sendOldValues, old is always null.'))
    return {'family': 'table-table-join', 'name': name, 'rec': (cls, method + '()'), 'mode': mode,
            'source': P + cls + '.java#' + method + ' (Kafka 4.0.0)', 'description': desc,
            'operation': 'table-table-join', 'join': join, 'joiner': JOINER,
            'serdes': 'keys Integer, values String', 'caching': 'default config (cache 10 MB), flushed after every record by TopologyTestDriver',
            'topics': {'topic1': 'left', 'topic2': 'right'},
            'notes': ('Topology: ' + topo + ' topic1/topic2 renamed left/right. Records with a null key are dropped (test pipes one per side). '
                      'Join result timestamp = max(left row ts, right row ts); a tombstone result carries the timestamp of the record that caused it... see expected. ' + TTD)}

def fix(c):
    c['notes'] = c['notes'].replace('a tombstone result carries the timestamp of the record that caused it... see expected. ', '')
    return c

CASES += [fix(x) for x in [
 tt('KTableKTableInnerJoinTest', 'testJoin', 'inner-join', 'inner', 'KTable-KTable inner join over 4 keys with updates on both sides, out-of-order timestamps and tombstones; output read from the output topic.', 'out'),
 tt('KTableKTableInnerJoinTest', 'testQueryableJoin', 'inner-join-materialized', 'inner', 'Same as inner-join but the join result is materialized (Materialized.with(Integer, String)); output is identical.', 'out'),
 tt('KTableKTableInnerJoinTest', 'testNotSendingOldValues', 'inner-join-changes-no-old-values', 'inner', 'Inner join Change records as forwarded by the join processor, without old values.', 'check', False),
 tt('KTableKTableInnerJoinTest', 'testSendingOldValues', 'inner-join-changes-with-old-values', 'inner', 'Inner join Change records with sendOldValues enabled (old = previous join result).', 'check', True),
 tt('KTableKTableLeftJoinTest', 'testJoin', 'left-join', 'left', 'KTable-KTable left join with updates, out-of-order timestamps and tombstones; output read from the output topic.', 'out'),
 tt('KTableKTableLeftJoinTest', 'testNotSendingOldValue', 'left-join-changes-no-old-values', 'left', 'Left join Change records without old values.', 'check', False),
 tt('KTableKTableLeftJoinTest', 'testSendingOldValue', 'left-join-changes-with-old-values', 'left', 'Left join Change records with sendOldValues enabled.', 'check', True),
 tt('KTableKTableOuterJoinTest', 'testJoin', 'outer-join', 'outer', 'KTable-KTable outer join with updates, out-of-order timestamps and tombstones; output read from the output topic.', 'out'),
 tt('KTableKTableOuterJoinTest', 'testNotSendingOldValue', 'outer-join-changes-no-old-values', 'outer', 'Outer join Change records without old values.', 'check', False),
 tt('KTableKTableOuterJoinTest', 'testSendingOldValue', 'outer-join-changes-with-old-values', 'outer', 'Outer join Change records with sendOldValues enabled.', 'check', True),
]]

KM = 'keyMapper = (key, value) -> { tokens = value.split(","); return tokens.length > 1 ? tokens[1] : null; } — the stream value "X0,FKey0" maps to global-table key "FKey0"; a value without a comma maps to null (record dropped).'
def gt(cls, method, name, join, desc, notes=''):
    op = 'join' if join == 'inner' else 'leftJoin'
    return {'family': 'stream-globaltable-join', 'name': name, 'rec': (cls, method + '()'),
            'source': P + cls + '.java#' + method + ' (Kafka 4.0.0)', 'description': desc,
            'operation': 'stream-globaltable-join', 'join': join, 'joiner': JOINER, 'key-mapper': KM,
            'serdes': 'stream: keys Integer, values String; global table: keys String, values String',
            'caching': 'default config', 'topics': {'streamTopic': 'stream', 'globalTableTopic': 'globaltable'},
            'notes': ('Topology (init(Optional.empty())): stream = builder.stream("streamTopic"); table = builder.globalTable("globalTableTopic") (not versioned); stream.%s(table, keyMapper, TOSTRING_JOINER).process(MockApiProcessorSupplier). '
                      'The stream input topic auto-advances timestamps (start 0, +1 ms per record); the global-table input topic is created without a start time, so its records get the wall-clock time of the run (recorded values shown; irrelevant for a non-versioned global table). '
                      'Only stream records trigger output; output key = stream key, output timestamp = stream record timestamp. ' % op + notes).strip()}

CASES += [
 gt('KStreamGlobalKTableJoinTest', 'shouldNotJoinWithEmptyGlobalTableOnStreamUpdates', 'inner-empty-globaltable', 'inner', 'No global-table rows: inner join emits nothing.'),
 gt('KStreamGlobalKTableJoinTest', 'shouldNotJoinOnGlobalTableUpdates', 'inner-globaltable-updates-do-not-trigger', 'inner', 'Global-table updates never trigger output; stream records join the current global-table value for their mapped key.'),
 gt('KStreamGlobalKTableJoinTest', 'shouldJoinOnlyIfMatchFoundOnStreamUpdates', 'inner-join-only-on-match', 'inner', 'Only stream records whose mapped key exists in the global table are joined.'),
 gt('KStreamGlobalKTableJoinTest', 'shouldClearGlobalTableEntryOnNullValueUpdates', 'inner-globaltable-tombstone', 'inner', 'A global-table tombstone deletes the row: later stream records mapping to it produce no inner-join output.'),
 gt('KStreamGlobalKTableJoinTest', 'shouldNotJoinOnNullKeyMapperValues', 'inner-null-mapped-key-dropped', 'inner', 'Stream records whose keyMapper returns null are dropped (no output).'),
 gt('KStreamGlobalKTableJoinTest', 'shouldJoinOnNullKeyWithNonNullKeyMapperValues', 'inner-null-stream-key-joins', 'inner', 'A stream record with a null key still joins when the keyMapper returns a non-null key (output key is null).'),
 gt('KStreamGlobalKTableLeftJoinTest', 'shouldNotJoinWithEmptyGlobalTableOnStreamUpdates', 'left-empty-globaltable', 'left', 'No global-table rows: left join emits (X, null) for every stream record.'),
 gt('KStreamGlobalKTableLeftJoinTest', 'shouldNotJoinOnGlobalTableUpdates', 'left-globaltable-updates-do-not-trigger', 'left', 'Global-table updates never trigger output; stream records emit (X, valueOrNull).'),
 gt('KStreamGlobalKTableLeftJoinTest', 'shouldJoinRegardlessIfMatchFoundOnStreamUpdates', 'left-join-regardless-of-match', 'left', 'Left join emits for every stream record, null right side when no global-table row.'),
 gt('KStreamGlobalKTableLeftJoinTest', 'shouldClearGlobalTableEntryOnNullValueUpdates', 'left-globaltable-tombstone', 'left', 'After a global-table tombstone, left-join output has a null right side.'),
 gt('KStreamGlobalKTableLeftJoinTest', 'shouldNotJoinOnNullKeyMapperValues', 'left-null-mapped-key-dropped', 'left', 'Even in a left join, stream records whose keyMapper returns null are dropped (no output).'),
 gt('KStreamGlobalKTableLeftJoinTest', 'shouldJoinOnNullKeyWithNonNullKeyMapperValues', 'left-null-stream-key-joins', 'left', 'A stream record with a null key still joins when the keyMapper returns a non-null key.'),
]
