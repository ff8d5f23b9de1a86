import { openFileLog } from '../../wal/file-log.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { describeLogPort } from './log-port.suite.ts';
import { seededRandom } from './helpers/random.ts';

describeLogPort('FileLog on SimFs (4 KiB segments)', 'power-loss', async () => {
  const random = seededRandom(11);
  const fs = new SimFs(random);
  const options = { fs, segmentBytes: 4096, recordBytesMax: 2048, pendingAppendsMax: 64, random };
  return {
    recordBytesMax: options.recordBytesMax,
    pendingAppendsMax: options.pendingAppendsMax,
    open: () => openFileLog('/data/log', options),
    crash: async () => fs.crash({ data: 'prefix', dir: 'prefix' }),
    failNextSync: () => {
      let failed = false;
      fs.faults.sync = () => {
        if (failed) return undefined;
        failed = true;
        return Object.assign(new Error('EIO: injected'), { code: 'EIO' });
      };
    },
    dispose: async () => undefined,
  };
});
