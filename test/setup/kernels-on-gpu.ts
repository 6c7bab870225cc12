// Test files (Node and Chromium) check the WGSL kernels, so small graphs must not be
// diverted to the host (setHostEvaluation). test/host.test.ts turns it back on.
import { setHostEvaluation } from '../../src/index';

setHostEvaluation(0);
