"""Train the course model (VAE, then UNet + text encoder) from scratch and save it to data/.

    python scripts/train_course_model.py            # full run: ~35-45 min on a 2-core CPU
    python scripts/train_course_model.py --quick    # smoke test: a minute, useless weights

Seeded and resumable: a checkpoint is written to ``--work-dir`` every 250 steps and the run
continues from it when restarted (the data order depends only on the seed and step number).
Writes ``data/course-model/`` (diffusers folder, safetensors), the loss log
``data/training/course_model_loss.csv`` and the settings and timings
``data/training/course_model_train.json``. Budgets are counted in steps, not minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import model as cm  # noqa: E402
from course_utils import shapes  # noqa: E402


def cosine_lr(step: int, total: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


def batch_indices(seed: int, step: int, n: int, bs: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randint(0, n, (bs,), generator=g)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vae-steps", type=int, default=1800)
    ap.add_argument("--unet-steps", type=int, default=9000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vae-images", type=int, default=6000)
    ap.add_argument("--unet-images", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--work-dir", default=str(ROOT / "build" / "train_course_model"))
    ap.add_argument("--out", default=str(ROOT / "data" / "course-model"))
    ap.add_argument("--log-dir", default=str(ROOT / "data" / "training"))
    ap.add_argument("--quick", action="store_true", help="tiny budgets, for a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.vae_steps, args.unet_steps, args.vae_images, args.unet_images = 20, 30, 200, 200
    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    tok_dir = cm.build_tokenizer_files(work / "tokenizer")
    pipe = cm.build_pipeline(tok_dir, seed=args.seed)
    vae, unet, te, tok = pipe.vae, pipe.unet, pipe.text_encoder, pipe.tokenizer
    state_path = work / "state.pt"
    state = {"phase": "vae", "step": 0}
    if state_path.exists():
        ck = torch.load(state_path, map_location="cpu", weights_only=True)
        vae.load_state_dict(ck["vae"])
        unet.load_state_dict(ck["unet"])
        te.load_state_dict(ck["text_encoder"])
        state = {"phase": ck["phase"], "step": int(ck["step"]), "opt": ck.get("opt"),
                 "scaling_factor": float(ck.get("scaling_factor", 0.0)),
                 "elapsed": float(ck.get("elapsed", 0.0))}
        print(f"resuming {state['phase']} at step {state['step']}")
    elapsed_before = state.get("elapsed", 0.0)
    loss_rows: list[tuple[str, int, float]] = []
    loss_csv = work / "loss.csv"
    if not state_path.exists() and loss_csv.exists():
        loss_csv.unlink()

    def save_state(phase, step, opt, sf=0.0):
        tmp = work / "state.pt.tmp"
        torch.save({"vae": vae.state_dict(), "unet": unet.state_dict(), "text_encoder": te.state_dict(),
                    "phase": phase, "step": step, "opt": opt.state_dict() if opt else None,
                    "scaling_factor": sf, "elapsed": elapsed_before + time.time() - t_start}, tmp)
        tmp.replace(state_path)
        with loss_csv.open("a", newline="") as f:
            csv.writer(f).writerows(loss_rows)
        loss_rows.clear()

    # ---- phase 1: VAE on every style the course uses (plain + outline, all five shapes) ----
    if state["phase"] == "vae":
        n = args.vae_images
        imgs, _, _ = shapes.make_dataset(n // 2, seed=args.seed + 1)
        imgs2, _, _ = shapes.make_dataset(n - n // 2, seed=args.seed + 2, shapes=shapes.SHAPES,
                                          styles=shapes.STYLES)
        x_all = shapes.to_tensor(imgs + imgs2)
        opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
        if state.get("opt"):
            opt.load_state_dict(state["opt"])
        vae.train()
        ema = None
        bar = tqdm(range(state["step"], args.vae_steps), desc="VAE", initial=state["step"], total=args.vae_steps)
        for step in bar:
            for g in opt.param_groups:
                g["lr"] = cosine_lr(step, args.vae_steps, args.lr)
            x = x_all[batch_indices(args.seed, step, len(x_all), args.batch_size)]
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample(generator=torch.Generator().manual_seed(step))).sample
            kl = post.kl().mean() / (8 * 8 * 4)
            loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-5 * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            loss_rows.append(("vae", step, round(loss.item(), 5)))
            bar.set_postfix(loss=f"{ema:.4f}")
            if (step + 1) % 250 == 0:
                save_state("vae", step + 1, opt)
        state = {"phase": "unet", "step": 0}
        save_state("unet", 0, None)

    # ---- phase 2: cache latents, then UNet + text encoder ----
    vae.eval()
    imgs, caps, _ = shapes.make_dataset(args.unet_images, seed=args.seed + 3)
    with torch.no_grad():
        x_all = shapes.to_tensor(imgs)
        means, stds = [], []
        for i in range(0, len(x_all), 256):
            d = vae.encode(x_all[i:i + 256]).latent_dist
            means.append(d.mean)
            stds.append(d.std)
        lat_mean, lat_std = torch.cat(means), torch.cat(stds)
    sf = state.get("scaling_factor") or round(1.0 / lat_mean.std().item(), 5)
    vae.register_to_config(scaling_factor=sf)
    print(f"latent scaling factor {sf}")
    ids_all = tok(caps, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
    empty_ids = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
    sched = cm.make_scheduler("ddpm")
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    if state.get("opt"):
        opt.load_state_dict(state["opt"])
    unet.train()
    te.train()
    ema = None
    bar = tqdm(range(state["step"], args.unet_steps), desc="UNet+TE", initial=state["step"], total=args.unet_steps)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.unet_steps, args.lr)
        idx = batch_indices(args.seed + 7, step, len(x_all), args.batch_size)
        gen = torch.Generator().manual_seed(args.seed * 7919 + step)
        lat = (lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=gen)) * sf
        ids = ids_all[idx].clone()
        drop = torch.rand(len(idx), generator=gen) < 0.1
        ids[drop] = empty_ids[0]
        noise = torch.randn(lat.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), generator=gen)
        noisy = sched.add_noise(lat, noise, t)
        cond = te(ids)[0]
        pred = unet(noisy, t, encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.99 * ema + 0.01 * loss.item()
        loss_rows.append(("unet", step, round(loss.item(), 5)))
        bar.set_postfix(loss=f"{ema:.4f}")
        if (step + 1) % 250 == 0:
            save_state("unet", step + 1, opt, sf)
    save_state("done", args.unet_steps, None, sf)

    unet.eval()
    te.eval()
    pipe.scheduler = cm.make_scheduler("dpm")
    out = Path(args.out)
    tmp_out = out.with_name(out.name + ".tmp")
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    pipe.save_pretrained(tmp_out, safe_serialization=True)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tok_dir / f, tmp_out / "tokenizer" / f)
    if out.exists():
        shutil.rmtree(out)
    tmp_out.replace(out)
    shutil.copy(loss_csv, log_dir / "course_model_loss.csv")
    total = elapsed_before + time.time() - t_start
    info = {k: v for k, v in vars(args).items() if k not in ("work_dir", "out", "log_dir")}
    info.update(train_seconds=round(total), latent_scaling_factor=sf, final_loss_ema=round(ema or 0, 4),
                torch=torch.__version__, threads=torch.get_num_threads())
    (log_dir / "course_model_train.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
