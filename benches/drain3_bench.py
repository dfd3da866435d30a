"""Drain3 on the same corpus stormwatch's miner reads: lines/s with masking on.

Usage: python3 benches/drain3_bench.py CORPUS_FILE  (prints one JSON object)
The masking instructions are those of Drain3's example configuration (IDs, IPs, hex sequences,
hex numbers, numbers), so the comparison is against Drain3 as its users run it.
"""
import json
import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

B = r"((?<=[^A-Za-z0-9])|^)"
E = r"((?=[^A-Za-z0-9])|$)"
MASKS = [
    (B + r"(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))" + E, "ID"),
    (B + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + E, "IP"),
    (B + r"([0-9a-f]{6,} ?){3,}" + E, "SEQ"),
    (B + r"([0-9A-F]{4} ?){4,}" + E, "SEQ"),
    (B + r"(0x[a-f0-9A-F]+)" + E, "HEX"),
    (B + r"([\-\+]?\d+)" + E, "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def main() -> None:
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\n") for l in f]
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in MASKS]
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    start = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    elapsed = time.perf_counter() - start
    print(json.dumps({"lines": len(lines), "seconds": elapsed, "lines_per_s": len(lines) / elapsed,
                      "clusters": len(miner.drain.clusters)}))


if __name__ == "__main__":
    main()
