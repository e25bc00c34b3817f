// A process that renames or deletes a folder and is killed (SIGKILL) right
// after one step, for folder-crash.test.ts: a real crash, which leaves the
// intent file and the dot-lock behind, and runs no cleanup at all.
//
//   node folder-child.ts ACCOUNT_DIR STEP rename FROM TO
//   node folder-child.ts ACCOUNT_DIR STEP delete NAME

import { deleteFolder, renameFolder } from '../../../src/store/folders.ts';

const [accountDir, killAfter, op, a, b] = process.argv.slice(2);
const hooks = {
  afterStep: (step: string) => {
    if (step === killAfter) process.kill(process.pid, 'SIGKILL');
  },
};
if (op === 'rename') await renameFolder(accountDir, a, b, hooks);
else await deleteFolder(accountDir, a, hooks);
process.stdout.write('finished without a kill\n');
