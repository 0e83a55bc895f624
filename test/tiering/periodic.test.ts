// Periodic, the timer behind every background loop: a run at a time, a run
// asked for during one joins it, stop waits for the run in hand, and a pause
// longer than setTimeout can take (RECODE's daily fold configured for a
// month, say) waits instead of firing at once.
import t from 'tap';
import { Periodic, silentLogger } from '../../tiering/index.js';

t.test('runs on its timer, one at a time; a run asked for meanwhile joins; stop waits for it', async (t) => {
  let runs = 0;
  let release!: () => void;
  const p = new Periodic('test', 10, async () => {
    runs++;
    await new Promise<void>((r) => (release = r));
  }, silentLogger);
  p.start();
  await new Promise((r) => setTimeout(r, 30));
  t.equal(runs, 1, 'the first run started and holds');
  const joined = p.runNow();
  t.equal(runs, 1, 'runNow during a run joins it');
  const stopped = p.stop();
  release();
  await Promise.all([joined, stopped]);
  t.ok(p.stopped);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(runs, 1, 'nothing runs after stop');
});

t.test('a pause past setTimeout’s 24.8-day limit does not fire at once', async (t) => {
  let runs = 0;
  const p = new Periodic('test', 30 * 24 * 3600_000, async () => void runs++, silentLogger);
  p.start(30 * 24 * 3600_000);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(runs, 0, 'no run within 50 ms of a 30-day pause');
  await p.stop();
});
