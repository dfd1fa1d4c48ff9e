"""Corpus speed: generator and MIDI renderers, as real-time factors per core (audio seconds per CPU second).

    python bench/corpus.py [--quick] [--json OUT] [--midi-root ../shared/datasets/vgmidi]

Runs on one process, so the figures are per core. The generator is measured on 30 s clips; the renderers on the
MIDI files of --midi-root (all of them, or the first 10 with --quick), both renderers on the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As a script (python bench/x.py) the bench folder would come first on the path and bench/http.py would shadow the
# standard library's http package: put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import time

from training.corpus.generate import synth_clip
from training.corpus.midi import RENDERERS, check_renderer
from training.corpus.synth import SR


def bench_generator(n: int) -> dict[str, float]:
    audio = cpu = 0.0
    for index in range(n):
        start = time.process_time()
        _, y = synth_clip(index, seed=0, seconds=30)
        cpu += time.process_time() - start
        audio += y.size / SR
    return {"clips": n, "audio_s": audio, "cpu_s": cpu, "rtf_per_core": audio / cpu}


def bench_renderer(name: str, files: list[Path]) -> dict[str, float]:
    check_renderer(name)
    audio = wall = 0.0
    for path in files:
        start = time.perf_counter()  # FluidSynth runs as a child process: wall time on one core
        y, _ = RENDERERS[name](path)
        wall += time.perf_counter() - start
        audio += y.size / SR
    return {"files": len(files), "audio_s": audio, "wall_s": wall, "rtf_per_core": audio / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--midi-root", type=Path, default=Path("../shared/datasets/vgmidi"))
    args = parser.parse_args()
    results = {"generator": bench_generator(5 if args.quick else 40)}
    files = sorted((args.midi_root / "midi").glob("*.mid"))[: 10 if args.quick else None]
    for name in RENDERERS:
        results[f"render_{name}"] = bench_renderer(name, files)
    print(f"{'what':<20}{'items':>7}{'audio s':>10}{'time s':>9}{'RTF/core':>10}")
    for name, r in results.items():
        items = r.get("clips", r.get("files"))
        print(f"{name:<20}{items:>7}{r['audio_s']:>10.0f}{r.get('cpu_s', r.get('wall_s')):>9.1f}"
              f"{r['rtf_per_core']:>10.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
