"""Masking time against input length, up to 1 MB, on inputs built to make a backtracking regex slow.

    python benchmarks/masking.py [--max 1000000] [--repeat 3]

For each family of hostile input (a long run of one pattern's own characters, which made the old e-mail pattern
quadratic) and each length, the best of `--repeat` runs of `privacy.mask_all` (every pattern over the whole text,
no cut) and of `mask_personal` (what the store calls: cut to MAX_MASK_CHARS first). Linear time shows as a
constant µs per 1k characters down each column; the old e-mail pattern is timed too, for comparison, up to 32k
(it is quadratic: each doubling of the length quadruples its time). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import re
import time

from faqbot.privacy import MAX_MASK_CHARS, mask_all, mask_personal

OLD_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")  # the pattern before this benchmark


def families() -> dict[str, str]:
    """Units repeated to length: each is a run some pattern could start anywhere in and scan to its end."""
    rng = random.Random(0)
    printable = "".join(rng.choice("abcXYZ019 .:@/_-+=密码中") for _ in range(4096))
    return {
        "word run a…": "a",
        "a.": "a.",
        "a@": "a@",
        "digits 1…": "1",
        "'1 '": "1 ",
        "'1-'": "1-",
        "'1.'": "1.",
        "'0:'": "0:",
        "eyJ-": "eyJ-",
        "Aa1/": "Aa1/",
        "password ": "password ",
        "密码": "密码",
        "中": "中",
        "random mix": printable,
    }


def best(fn, text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=1_000_000, help="longest input, characters (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lengths = [n for n in (1_000, 8_000, 32_000, 125_000, 250_000, 500_000, 1_000_000) if n <= args.max]
    print(f"mask_all: µs per 1k characters (constant down a column = linear); mask_personal reads {MAX_MASK_CHARS:,}")
    print(f"{'family':<14}" + "".join(f"{n:>10,}" for n in lengths) + f"{'personal 1M':>13}")
    for name, unit in families().items():
        row = f"{name:<14}"
        for n in lengths:
            text = (unit * (n // len(unit) + 1))[:n]
            row += f"{best(mask_all, text, args.repeat) / n * 1e9:>10.1f}"
        text = (unit * (lengths[-1] // len(unit) + 1))[: lengths[-1]]
        row += f"{best(mask_personal, text, args.repeat) * 1e3:>11.2f}ms"
        print(row, flush=True)
    print("\nthe old e-mail pattern alone on 'a' * n (seconds):")
    for n in (2_000, 8_000, 16_000, 32_000):
        print(f"  {n:>7,}: {best(lambda t: OLD_EMAIL.sub('<email>', t), 'a' * n, 1):.3f} s", flush=True)


if __name__ == "__main__":
    main()
