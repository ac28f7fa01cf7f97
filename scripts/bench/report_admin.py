"""The admin API's sections of the bench table (scripts/bench/admin.sh's results): wsgate's throughput
with a tap attached to another tunnel, and the time GET /tunnels takes with many tunnels open."""
import math
import statistics
from collections import defaultdict

# The throughput scenarios of the tap mode: the other tunnels alone, beside a tapped trickle, and
# beside a flooding tunnel without and with a tap.
TAP_SCENARIOS = ("tap-plain", "tap-tapped", "tap-flood-untapped", "tap-flood-tapped")


def split(rows):
    """(the rows the rest of the report reads, the admin modes' rows)."""
    admin = [r for r in rows if r["mode"] in ("tap", "tunnels-list") or r.get("scenario") in TAP_SCENARIOS]
    return [r for r in rows if r not in admin], admin


def sections(rows, verdicts, human):
    """Prints both sections; returns what was empty (a broken setup: the report fails on it)."""
    broken = []
    tap_section([r for r in rows if r["mode"] != "tunnels-list"], verdicts, human, broken)
    list_section([r for r in rows if r["mode"] == "tunnels-list"], broken)
    return broken


def tap_section(rows, verdicts, human, broken):
    if not rows:
        return
    tput, side, by_run = defaultdict(list), defaultdict(list), {}
    for r in rows:
        if r["mode"] == "throughput":
            tput[(r["scenario"], r["connections"], r["size"])].append(r["msgs_per_s"])
            by_run[(r["scenario"], r["connections"], r["size"], r["run"])] = r["msgs_per_s"]
            if not r["messages"]:
                broken.append(f"{r['target']} {r['scenario']} {r['connections']} x {human(r['size'])}")
        else:
            side[r["scenario"]].append(r)
            tapped = r["scenario"] != "tap-flood-untapped"
            if not r["side"].get("echoed") or (tapped and not (r["tap"] or {}).get("frames")):
                broken.append(f"{r['target']} {r['scenario']} side tunnel or its tap")
    med = lambda v: statistics.median(v) if v else None
    runs = max((len(v) for v in tput.values()), default=0)
    print("Admin API: throughput of other tunnels, with a tap attached elsewhere: wsgate msg/s alone and while one"
          f" more tunnel carries 32 B every 10 ms with a tap on it; medians of {runs} runs")
    print(f"{'scenario':<14}{'alone':>11}{'tap beside':>12}{'ratio':>8}  each run's pair (the machine's noise)")
    shapes = sorted({(c, s) for sc, c, s in tput if sc == "tap-plain"}, key=lambda k: k[1])
    ratios = []
    for c, s in shapes:
        plain, tapped = med(tput[("tap-plain", c, s)]), med(tput[("tap-tapped", c, s)])
        if not plain or not tapped:
            continue
        ratios.append(tapped / plain)
        pairs = [by_run[("tap-tapped", c, s, run)] / a for (sc, c2, s2, run), a in sorted(by_run.items())
                 if (sc, c2, s2) == ("tap-plain", c, s) and a and ("tap-tapped", c, s, run) in by_run]
        print(f"{f'{c} x {human(s)}':<14}{plain:>11.0f}{tapped:>12.0f}{tapped / plain:>8.2f}  "
              + " ".join(f"{p:.2f}" for p in pairs))
    if ratios:
        # One verdict over the scenarios (their geometric mean): each alone moves by more than 5% from
        # run to run on a shared 2-core machine, tap or no tap.
        mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"geometric mean of the ratios: {mean:.2f}")
        verdicts.append(("tap: other tunnels' throughput with a tap elsewhere >= 0.95x alone (geometric mean)",
                         mean >= 0.95))
    lines = [r["tap"] for r in side["tap-tapped"] if r["tap"]]
    if lines:
        print(f"the tapped trickle: {statistics.median(r['side']['echoed'] for r in side['tap-tapped']):.0f} messages"
              f" echoed per run (median), tap lines per run {statistics.median(t['frames'] for t in lines):.0f},"
              f" dropped {sum(t['dropped'] for t in lines)} in all; the taps ended: " + ends(lines))
    flood = {sc: (med(tput[(sc, c, s)]), side[sc]) for sc, c, s in tput if sc.startswith("tap-flood")}
    if len(flood) == 2:
        shape = next(f"{c} x {human(s)}" for sc, c, s in tput if sc.startswith("tap-flood"))
        print(f"With that tunnel flooding instead (16 B, 16 in flight), {shape} of other tunnels beside it (frames:"
              " the flood's, both ways, from its open, a little before the tap was attached):")
        print(f"{'':<14}{'others msg/s':>13}{'flood msg/s':>13}{'frames':>10}{'tap lines':>11}{'dropped':>10}"
              "  tap ended")
        for sc, label in (("tap-flood-untapped", "untapped"), ("tap-flood-tapped", "tapped")):
            others, sides = flood[sc]
            fl = med([r["side"]["msgs_per_s"] for r in sides if "msgs_per_s" in r["side"]])
            # Frames the tunnel carried: each message out and its echo back.
            carried = med([r["side"].get("sent", 0) + r["side"].get("echoed", 0) for r in sides])
            taps = [r["tap"] for r in sides if r["tap"]]
            lines = f"{statistics.median(t['frames'] for t in taps):>11.0f}" if taps else f"{'-':>11}"
            dropped = f"{statistics.median(t['dropped'] for t in taps):>10.0f}" if taps else f"{'-':>10}"
            print(f"{label:<14}{others or 0:>13.0f}{fl or 0:>13.0f}{carried or 0:>10.0f}{lines}{dropped}"
                  + (f"  {ends(taps)}" if taps else ""))
        a, b = flood["tap-flood-untapped"][0], flood["tap-flood-tapped"][0]
        if a and b:
            rates = {t.get("read_rate", 0) for _, sides in flood.values() for r in sides if (t := r["tap"])}
            pairs = [by_run[("tap-flood-tapped", c, s, run)] / v for (sc, c, s, run), v in sorted(by_run.items())
                     if sc == "tap-flood-untapped" and v and ("tap-flood-tapped", c, s, run) in by_run]
            print(f"{'ratio':<14}{b / a:>13.2f}  each run's pair: {' '.join(f'{p:.2f}' for p in pairs)}")
            print(f"(frames, tap lines, dropped: medians per run; the tap read at"
                  f" {', '.join(f'{x:,.0f}' for x in sorted(rates))} lines/s, then drained to its end)")
    print()


def ends(taps):
    """How the taps' streams ended ("closed": the tunnel ended and the tap saw it), with counts."""
    seen = defaultdict(int)
    for t in taps:
        seen[(t["end"] or {}).get("end", "no end line")] += 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(seen.items()))


def list_section(rows, broken):
    if not rows:
        return
    for r in rows:
        if not r["ok"]:
            broken.append(f"{r['target']} GET /tunnels?{r['query']}")
    first = rows[0]
    print(f"Admin API: GET /tunnels with {first['open']} of {first['tunnels']} tunnels open (wsgate, WebSockets over"
          f" HTTP/2); {first['calls']} calls each, ms to the last byte (curl), first byte: wsgate's answer built")
    print(f"{'query':<22}{'listed':>8}{'bytes':>11}{'median':>9}{'min':>9}{'max':>9}{'1st byte':>10}")
    for r in rows:
        print(f"{r['query'] or '(all)':<22}{r['listed'] if r['listed'] is not None else '-':>8}{r['bytes']:>11}"
              f"{r['median_ms'] or 0:>9.1f}{r['min_ms'] or 0:>9.1f}{r['max_ms'] or 0:>9.1f}{r['ttfb_median_ms'] or 0:>10.1f}")
    last = rows[-1]
    if first["open"]:
        per = (last["rss_after_kib"] - first["rss_before_kib"]) / first["open"]
        print(f"wsgate RSS {first['rss_before_kib']} -> {last['rss_after_kib']} KiB with the tunnels open and listed"
              f" ({per:.2f} KiB per tunnel)")
    print()
