// The mailbox a session has selected, as that session sees it. (Filled in
// with the store's shared mailbox state.)

export interface Selected {
  /** The mailbox's name (Unicode). */
  name: string;
  /** EXAMINE, or SELECT of a mailbox the user may not change. */
  readOnly: boolean;
}
