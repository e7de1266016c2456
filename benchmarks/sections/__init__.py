"""One module per benchmark section, each with `TITLE` and `run(settings) -> dict` (see `harness.section_result`).

Sections run in this order in `make bench`; `benchmarks/run.py SECTION...` runs some of them.
"""

SECTIONS = (
    "decode",
    "loader",
    "compute",
    "streaming",
    "engines",
    "scaling",
    "peers",
    "ablation",
    "confidence",
    "transfer",
    "features",
    "gpu",
)
