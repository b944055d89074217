"""Phone book benchmark: parse time of a large vCard file, and lookup time by book size.

Prints figures, never pass/fail (issue 12 asks: 1,000 cards in under a
second, lookups O(1)).  Run inside the project's environment from the
checkout's root:

    scripts/run python -m benchmarks.bench_phonebook [--cards N] [--repeat R]

The file is generated: N cards, each with FN, N, ORG, two TEL in different
written forms (national with separators, +31 with a bracketed trunk
prefix), an EMAIL and an ADR, as a phone's export has them.  Parse time is
`parse_vcards` on the whole text (vobject parsing plus normalising every
number), best and median of R runs.  Lookup time is the mean of one million
`name_for` calls (half hits, half misses) in books of 1,000 / 10,000 /
100,000 numbers: flat figures mean O(1) (a dict).
"""

from __future__ import annotations

import argparse
import statistics
import time

from custom_components.kpn_voip.phonebook import PhoneBook, parse_vcards


def vcards(count: int) -> str:
    """`count` cards with two numbers each."""
    cards = []
    for n in range(count):
        cards.append(
            "\r\n".join(
                [
                    "BEGIN:VCARD",
                    "VERSION:3.0",
                    f"FN:Contact {n} Jansen",
                    f"N:Jansen;Contact {n};;;",
                    "ORG:Voorbeeld B.V.",
                    f"TEL;TYPE=CELL:06-{n:08d}",
                    f"TEL;TYPE=HOME:+31 (0)20 {n:07d}",
                    f"EMAIL;TYPE=INTERNET:contact{n}@example.invalid",
                    "ADR;TYPE=HOME:;;Dorpsstraat 1;Ergens;;1234 AB;Nederland",
                    "END:VCARD",
                ]
            )
        )
    return "\r\n".join(cards) + "\r\n"


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    text = vcards(args.cards)
    times = []
    book = PhoneBook()
    for _ in range(args.repeat):
        start = time.perf_counter()
        book = parse_vcards(text)
        times.append(time.perf_counter() - start)
    print(
        f"parse {args.cards} cards ({len(text) / 1024:.0f} KiB, {len(book)} numbers): "
        f"best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms "
        f"(target < 1000 ms)"
    )

    lookups = 1_000_000
    for size in (1_000, 10_000, 100_000):
        names = {f"+3120{n:07d}": f"Contact {n}" for n in range(size)}
        sized = PhoneBook(names=names, cards=size)
        probes = [f"+3120{n % size:07d}" if n % 2 else f"+3130{n:07d}" for n in range(1000)]
        start = time.perf_counter()
        for _ in range(lookups // len(probes)):
            for probe in probes:
                sized.name_for(probe)
        per_lookup = (time.perf_counter() - start) / lookups
        print(f"lookup in a book of {size:>7,} numbers: {per_lookup * 1e9:.0f} ns per name_for")


if __name__ == "__main__":
    main()
