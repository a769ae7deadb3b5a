//! luring-sandbox: starts untrusted code in a process that can reach nothing
//! but what it is handed. Filled in by the sandbox issue.
