import { openFileLog } from '../../wal/file-log.ts';
import type { Log } from '../../wal/log.ts';
import { describeLogPort } from './log-port.suite.ts';
import { KillableFs } from './helpers/killable-fs.ts';
import { tempDir } from './helpers/temp-dir.ts';

describeLogPort('FileLog on the real file system (64 KiB segments)', 'process-kill', async () => {
  const { dir, remove } = await tempDir();
  let fs = new KillableFs();
  let open: Log | undefined;
  const options = { segmentBytes: 64 * 1024, recordBytesMax: 2048, pendingAppendsMax: 64 };
  return {
    recordBytesMax: options.recordBytesMax,
    pendingAppendsMax: options.pendingAppendsMax,
    open: async () => {
      const opened = await openFileLog(dir, { ...options, fs });
      open = opened.log;
      return opened;
    },
    failNextSync: () => fs.failNextSync(),
    // The real disk cannot lose power here; this is kill -9: the process and its handles die.
    crash: async () => {
      await fs.kill();
      fs = new KillableFs();
    },
    dispose: async () => {
      await open?.close().catch(() => undefined);
      await fs.kill();
      await remove();
    },
  };
});
