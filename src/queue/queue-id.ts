// Ids for queued messages (they name the queue files, <id>.msg and
// <id>.state) and for sessions, whose id a message takes on in the logs.
// Both the server and the relay make them, for files in the same directory,
// so they must never collide between the two processes.

let counter = 0;

/**
 * Short unique ids: the time, the process id, then a counter. The process
 * id matters: the server and the relay both name queue files with these
 * ids, and two processes counting from 0 could otherwise pick the same one
 * in the same millisecond. Only letters and digits: safe in a file name.
 */
export function newId(): string {
  counter = (counter + 1) % 0x10000;
  const pid = process.pid.toString(36);
  return (Date.now().toString(36) + pid).toUpperCase() + counter.toString(16).toUpperCase().padStart(4, '0');
}
