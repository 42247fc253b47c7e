"""Where does one distillation step spend its time? Prints a per-phase table (seconds per step).

Usage: python eval/profile_step.py [--batch-size 32] [--steps 5] [--student builtin:me5-small]
       python eval/profile_step.py --data TANAKA/train --detokenize --no-dropout --freeze-layers 6
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from xlingual import data
from xlingual.config import DataConfig
from xlingual.models import specs as models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per step (2× sentences)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--student", default="builtin:me5-small")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--fused", action="store_true", help="fused AdamW kernel")
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument("--freeze-layers", type=int, default=0, help="also freeze the lowest N transformer layers")
    parser.add_argument("--no-dropout", action="store_true", help="train with dropout switched off")
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformer")
    parser.add_argument("--data", default="builtin:train", help="pairs to sample batches from (any data spec)")
    parser.add_argument("--detokenize", action="store_true")
    args = parser.parse_args()

    corpus = data.read_corpus(args.data, DataConfig(detokenize=args.detokenize))
    student = models.load_model(args.student, device="cpu")
    student.max_seq_length = args.max_seq_length
    for name, param in student.named_parameters():
        if ".pooler." in name or (args.freeze_embeddings and "word_embeddings" in name):
            param.requires_grad_(False)
        if any(f".layer.{i}." in name for i in range(args.freeze_layers)):
            param.requires_grad_(False)
    # eval() switches every dropout off, including the one inside scaled-dot-product attention; BERT has no
    # other train/eval difference (no batch norm), and gradients flow the same.
    student.train(not args.no_dropout)
    if args.compile:
        # sentence-transformers 6 runs `Transformer.model`; `auto_model` is a read-only alias of it, and
        # assigning to it would register an unused module instead of replacing the one that runs.
        student[0].model = torch.compile(student[0].model, dynamic=True)
    prompt = student.prompts.get(student.default_prompt_name) if student.default_prompt_name else None
    dim = student.get_embedding_dimension()
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-5, fused=args.fused)
    rng = np.random.default_rng(0)
    phases: dict[str, list[float]] = {k: [] for k in ("tokenise", "forward", "backward", "clip", "optimizer")}
    for step in range(args.steps + 1):
        idx = rng.choice(len(corpus), args.batch_size, replace=False)
        texts = [corpus.en[i] for i in idx] + [corpus.ja[i] for i in idx]
        target = torch.nn.functional.normalize(torch.randn(args.batch_size, dim), dim=1)
        t0 = time.perf_counter()
        features = student.preprocess(texts, prompt=prompt)
        t1 = time.perf_counter()
        out = student(features)["sentence_embedding"]
        loss = torch.nn.functional.mse_loss(out[: args.batch_size], target) + torch.nn.functional.mse_loss(
            out[args.batch_size :], target
        )
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        t4 = time.perf_counter()
        optimizer.step()
        t5 = time.perf_counter()
        if step == 0:
            continue  # warm-up
        for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            phases[key].append(value)
    total = sum(np.mean(v) for v in phases.values())
    tokens = int(features["attention_mask"].numel())
    threads = torch.get_num_threads()
    print(f"| phase | s/step | share |  (batch {args.batch_size} pairs, padded tokens {tokens}, {threads} threads)")
    print("|---|---:|---:|")
    for key, values in phases.items():
        print(f"| {key} | {np.mean(values):.3f} | {np.mean(values) / total:.0%} |")
    print(f"| total | {total:.3f} | {args.batch_size / total:.1f} pairs/s |")


if __name__ == "__main__":
    main()
