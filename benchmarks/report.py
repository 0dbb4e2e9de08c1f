"""Renders benchmarks/results.json as the README's Markdown tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str = str(Path(__file__).with_name("results.json"))) -> None:
    results = json.loads(Path(path).read_text())
    print(f"Machine: {results['machine']}; TensorFlow {results['tensorflow']}; ")
    print(f"data: {results['data']}, {results['images_per_epoch']} images per epoch, ")
    print(f"{results['rounds']} alternating rounds (sweep: {results.get('scaling_rounds')}).\n")
    print("| likelihood | arch | batch | recipe img/s | tfpvae img/s | ratio (wall) | min–max "
          "| ratio (CPU time) | peak RSS MB recipe / tfpvae |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["comparisons"]:
        print(
            f"| {r['likelihood']} | {r['architecture']} | {r['batch_size']} "
            f"| {r['recipe_img_s']:.0f} | {r['tfpvae_img_s']:.0f} | **{r['ratio']:.2f}** "
            f"| {r['ratio_min']:.2f}–{r['ratio_max']:.2f} | {r['cpu_ratio']:.2f} "
            f"| {r['recipe_peak_rss_mb']:.0f} / {r['tfpvae_peak_rss_mb']:.0f} |"
        )
    if results["scaling"]:
        print("\n| latent_dim | batch | tfpvae img/s (wall) | img/s of CPU time |")
        print("|---:|---:|---:|---:|")
        for r in results["scaling"]:
            cells = (r["latent_dim"], r["batch_size"], round(r["img_s"]), round(r["cpu_img_s"]))
            print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
