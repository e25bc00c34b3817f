// The stylesheet, served as /style.css (the pages' CSP allows no inline
// style). Small screens first: one column; wider screens get a folder
// column beside the list. Focus is always visible for keyboard users.

export const STYLESHEET = `
:root { --fg: #1b1f23; --muted: #5a6470; --line: #d8dde3; --accent: #0b5cad; --bg: #fff; --soft: #f3f5f7; --bad: #a4161a; --good: #1e6b34; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
.bar { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .5rem 1rem; background: var(--soft); border-bottom: 1px solid var(--line); }
.bar .brand { font-weight: 700; text-decoration: none; color: var(--fg); }
.bar nav { display: flex; gap: 1rem; flex-wrap: wrap; }
.bar .logout { margin-left: auto; display: flex; gap: .5rem; align-items: center; }
.user { color: var(--muted); }
main { padding: 1rem; max-width: 72rem; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: .2rem 0 1rem; overflow-wrap: anywhere; }
button, .button { font: inherit; padding: .4rem .8rem; border: 1px solid var(--line); border-radius: 4px; background: var(--soft); color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
input, select, textarea { font: inherit; padding: .35rem; border: 1px solid var(--line); border-radius: 4px; max-width: 100%; }
label { display: block; margin: .6rem 0 .2rem; font-weight: 600; }
.login { max-width: 22rem; display: grid; }
.login button { margin-top: 1rem; }
.notice { padding: .5rem .8rem; background: #e6f4ea; color: var(--good); border-radius: 4px; }
.error { padding: .5rem .8rem; background: #fde8e8; color: var(--bad); border-radius: 4px; }
.columns { display: grid; gap: 1rem; }
@media (min-width: 50rem) { .columns { grid-template-columns: 14rem 1fr; } }
.folders ul { list-style: none; padding: 0; margin: 0; }
.folders li a { display: flex; justify-content: space-between; padding: .3rem .5rem; border-radius: 4px; text-decoration: none; }
.folders li a.current { background: var(--soft); font-weight: 700; }
.count { color: var(--muted); }
.unread-count { font-weight: 700; }
.toolbar { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .5rem 0; }
.search { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .5rem; }
.search input[type=search] { flex: 1 1 12rem; }
table.messages { width: 100%; border-collapse: collapse; }
table.messages td, table.messages th { padding: .45rem .4rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.messages th { font-size: .85rem; color: var(--muted); font-weight: 600; }
table.messages .subject a { text-decoration: none; color: var(--fg); overflow-wrap: anywhere; }
tr.unread .subject a, tr.unread .from { font-weight: 700; }
.flagged { color: #c26700; }
.size, .date { white-space: nowrap; color: var(--muted); font-size: .9rem; }
@media (max-width: 40rem) {
  table.messages thead { display: none; }
  table.messages tr { display: grid; grid-template-columns: 2rem 1fr auto; padding: .3rem 0; border-bottom: 1px solid var(--line); }
  table.messages td { border: 0; padding: .1rem .3rem; }
  table.messages td.subject { grid-column: 2 / 4; }
  table.messages td.size { display: none; }
}
.pager { display: flex; gap: 1rem; align-items: center; margin: .8rem 0; }
.headers { display: grid; grid-template-columns: auto 1fr; gap: .2rem .8rem; margin: 0 0 1rem; }
.headers dt { color: var(--muted); }
.headers dd { margin: 0; overflow-wrap: anywhere; }
.body-text { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .95rem; background: var(--soft); padding: 1rem; border-radius: 4px; }
iframe.mail { width: 100%; height: 70vh; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.attachments { padding-left: 1.2rem; }
.compose { display: grid; max-width: 50rem; }
.compose textarea { min-height: 18rem; width: 100%; }
.compose input[type=text], .compose input[type=email] { width: 100%; }
.compose .buttons { margin-top: 1rem; display: flex; gap: .5rem; flex-wrap: wrap; }
.folder-admin form { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .3rem 0; }
.folder-admin li { margin-bottom: .6rem; }
.inline { display: inline; }
.muted { color: var(--muted); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
