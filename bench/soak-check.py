"""Checks a `loadgen soak` result against the soak's targets (bench/soak):
adds the GC runs from berth's log, writes the full JSON to OUT, prints it
without the samples, and exits 1 when a target is missed.

usage: soak-check.py SOAK.json BERTH.log OUT.json
"""
import json
import sys

r = json.load(open(sys.argv[1]))
gc = [l.strip()[:400] for l in open(sys.argv[2]) if "garbage collection finished" in l]
r["gc_runs"] = len(gc)
r["gc_lines"] = gc
fds = [s["fds"] for s in r["samples"]]
half = len(fds) // 2
r["fds_first_half_max"] = max(fds[:half] or [0])
r["fds_second_half_max"] = max(fds[half:] or [0])
misses = []
if r["errors"]:
    misses.append(f'{r["errors"]} errors')
if r["gc_runs"] < 1:
    misses.append("no GC run during the soak")
if r["fds_after"] > r["fds_start"] + 4:
    misses.append(f'fds {r["fds_start"]} at the start, {r["fds_after"]} after')
# The GC runs in the second half and stats and deletes up to 32 blobs at
# once (registry::gc::run::SWEEP_BATCH), each a descriptor for a moment; a
# leak shows as growth beyond that, and in fds_after.
if r["fds_second_half_max"] > r["fds_first_half_max"] + 16 + 32:
    misses.append("fds grow over the run")
if r["rss_peak_mib"] > 64:
    misses.append(f'peak RSS {r["rss_peak_mib"]} MiB > 64')
if r["rss_after_mib"] - r["rss_start_mib"] > 24:
    misses.append(f'RSS after {r["rss_after_mib"]} MiB, {r["rss_start_mib"]} at the start')
r["targets_missed"] = misses
json.dump(r, open(sys.argv[3], "w"), indent=1)
print(json.dumps({k: v for k, v in r.items() if k != "samples"}, indent=1))
sys.exit(1 if misses else 0)
