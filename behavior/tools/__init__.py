"""The jobs a user runs: `check`, `predict` (with `rows` and `windows`, whose `segments` merge window scores),
`live`, `export`, `demo` and `profile` (`behavior models`)."""
