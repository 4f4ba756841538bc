"""Recreates the two logging shadows of Kafka's own classes and compiles them with
shadow/EddyRec.java and shadow/EddyListener.java into shadow/classes.

  python3 make_shadows.py   (after setup.sh has filled lib/ and src-jars/)

It unpacks TopologyTestDriver.java from kafka-streams-test-utils-4.0.0-sources.jar and
MockApiProcessor.java from kafka-streams-4.0.0-test-sources.jar into shadow/src/, adds
one EddyRec.log call at each point listed below (each edit must match exactly once, so
a different Kafka version fails loudly), and runs javac. The events are the ones gen.py
and trace.py read:
  TopologyTestDriver: DRIVER_START (constructor), IN {topic,key,value,timestamp} (every
    record piped through a TestInputTopic, with the timestamp actually used), WALL {ms}
    (advanceWallClockTime), OUT {topic,key,value,timestamp} (every record read from a
    TestOutputTopic, after deserialization).
  MockApiProcessor (each instance gets an id `proc`): PROC {proc,key,value,timestamp}
    (every record it receives), CHECK {proc,expected} (checkAndClearProcessResult,
    checkAndClearProcessedRecords, checkEmptyAndClearProcessResult: the test's expected
    list, logged before the assertion), PROCESSED_READ {proc} (processed() is called).
  EddyListener (registered through META-INF/services) adds TEST_START / TEST_END."""
import glob, os, subprocess, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)
R = 'org.apache.kafka.test.EddyRec'

def unpack(jar, member, dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with zipfile.ZipFile(jar) as z:
        open(dest, 'wb').write(z.read(member))
    return open(dest).read()

def patch(path, s, edits):
    for old, new in edits:
        n = s.count(old)
        if n != 1:
            raise SystemExit('%s: expected exactly one match, found %d, for:\n%s' % (path, n, old))
        s = s.replace(old, new)
    open(path, 'w').write(s)

ttd = 'shadow/src/org/apache/kafka/streams/TopologyTestDriver.java'
patch(ttd, unpack('src-jars/kafka-streams-test-utils-4.0.0-sources.jar', 'org/apache/kafka/streams/TopologyTestDriver.java', ttd), [
 ("""                               final long initialWallClockTimeMs) {
        final Properties configCopy = new Properties();""",
  """                               final long initialWallClockTimeMs) {
        %s.log("{\\"ev\\":\\"DRIVER_START\\"}"); // EDDY
        final Properties configCopy = new Properties();""" % R),
 ("""        mockWallClockTime.sleep(advance.toMillis());
        if (task != null) {""",
  """        %s.log("{\\"ev\\":\\"WALL\\",\\"ms\\":" + advance.toMillis() + "}"); // EDDY
        mockWallClockTime.sleep(advance.toMillis());
        if (task != null) {""" % R),
 ("""        final V value = valueDeserializer.deserialize(record.topic(), record.headers(), record.value());
        return new TestRecord<>(key, value, record.headers(), record.timestamp());""",
  """        final V value = valueDeserializer.deserialize(record.topic(), record.headers(), record.value());
        %s.log("{\\"ev\\":\\"OUT\\",\\"topic\\":" + %s.str(topic) + ",\\"key\\":" + %s.val(key) + ",\\"value\\":" + %s.val(value) + ",\\"timestamp\\":" + record.timestamp() + "}"); // EDDY
        return new TestRecord<>(key, value, record.headers(), record.timestamp());""" % (R, R, R, R)),
 ("""            throw new IllegalStateException("Provided `TestRecord` does not have a timestamp and no timestamp overwrite was provided via `time` parameter.");
        }
""",
  """            throw new IllegalStateException("Provided `TestRecord` does not have a timestamp and no timestamp overwrite was provided via `time` parameter.");
        }
        %s.log("{\\"ev\\":\\"IN\\",\\"topic\\":" + %s.str(topic) + ",\\"key\\":" + %s.val(record.key()) + ",\\"value\\":" + %s.val(record.value()) + ",\\"timestamp\\":" + timestamp + "}"); // EDDY
""" % (R, R, R, R)),
])

map_ = 'shadow/src/org/apache/kafka/test/MockApiProcessor.java'
patch(map_, unpack('src-jars/kafka-streams-4.0.0-test-sources.jar', 'org/apache/kafka/test/MockApiProcessor.java', map_), [
 ("""    private ProcessorContext<KOut, VOut> context;
""",
  """    private ProcessorContext<KOut, VOut> context;
    private static final java.util.concurrent.atomic.AtomicInteger EDDY_IDS = new java.util.concurrent.atomic.AtomicInteger(); // EDDY
    private final int eddyId = EDDY_IDS.incrementAndGet(); // EDDY
"""),
 ("""        processed.add(record);
""",
  """        processed.add(record);
        EddyRec.log("{\\"ev\\":\\"PROC\\",\\"proc\\":" + eddyId + ",\\"key\\":" + EddyRec.val(key) + ",\\"value\\":" + EddyRec.val(value) + ",\\"timestamp\\":" + record.timestamp() + "}"); // EDDY
"""),
 ("""    public void checkAndClearProcessResult(final KeyValueTimestamp<?, ?>... expected) {
""",
  """    public void checkAndClearProcessResult(final KeyValueTimestamp<?, ?>... expected) {
        EddyRec.log("{\\"ev\\":\\"CHECK\\",\\"proc\\":" + eddyId + ",\\"expected\\":" + EddyRec.val(java.util.Arrays.asList(expected)) + "}"); // EDDY
"""),
 ("""    public void checkAndClearProcessedRecords(final Record<?, ?>... expected) {
""",
  """    public void checkAndClearProcessedRecords(final Record<?, ?>... expected) {
        EddyRec.log("{\\"ev\\":\\"CHECK\\",\\"proc\\":" + eddyId + ",\\"expected\\":" + EddyRec.val(java.util.Arrays.stream(expected).map(r -> new KeyValueTimestamp<>(r.key(), r.value(), r.timestamp())).collect(Collectors.toList())) + "}"); // EDDY
"""),
 ("""    public void checkEmptyAndClearProcessResult() {
""",
  """    public void checkEmptyAndClearProcessResult() {
        EddyRec.log("{\\"ev\\":\\"CHECK\\",\\"proc\\":" + eddyId + ",\\"expected\\":[]}"); // EDDY
"""),
 ("""    public ArrayList<KeyValueTimestamp<KIn, VIn>> processed() {
""",
  """    public ArrayList<KeyValueTimestamp<KIn, VIn>> processed() {
        EddyRec.log("{\\"ev\\":\\"PROCESSED_READ\\",\\"proc\\":" + eddyId + "}"); // EDDY
"""),
])

os.makedirs('shadow/classes/META-INF/services', exist_ok=True)
open('shadow/classes/META-INF/services/org.junit.platform.launcher.TestExecutionListener', 'w').write('org.apache.kafka.test.EddyListener\n')
cp = ':'.join(sorted(glob.glob('lib/*.jar')))
srcs = [ttd, map_, 'shadow/EddyRec.java', 'shadow/EddyListener.java']
subprocess.run(['javac', '-nowarn', '-encoding', 'UTF-8', '-parameters', '-cp', cp, '-d', 'shadow/classes'] + srcs, check=True)
print('compiled', ', '.join(srcs), 'into shadow/classes')
