package org.apache.kafka.test;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;

public class EddyListener implements TestExecutionListener {
    @Override
    public void executionStarted(final TestIdentifier id) {
        if (id.isTest()) EddyRec.log("{\"ev\":\"TEST_START\",\"name\":" + EddyRec.str(id.getDisplayName()) + ",\"uid\":" + EddyRec.str(id.getUniqueId()) + "}");
    }
    @Override
    public void executionFinished(final TestIdentifier id, final TestExecutionResult r) {
        if (id.isTest()) EddyRec.log("{\"ev\":\"TEST_END\",\"name\":" + EddyRec.str(id.getDisplayName()) + ",\"status\":" + EddyRec.str(r.getStatus().toString()) + ",\"err\":" + EddyRec.str(r.getThrowable().map(Throwable::toString).orElse(null)) + "}");
    }
}
