"""AssocTransformer: output layout, masking, candidate permutation equivariance, checkpointing."""

from __future__ import annotations

import pytest
import torch

from stagetrack.assoc.config import AssocConfig
from stagetrack.assoc.features import HIST_FIELDS, PAIR_FIELDS, TRACK_FIELDS
from stagetrack.assoc.model import MASKED_LOGIT, AssocTransformer, assoc_loss

@pytest.fixture(autouse=True)
def one_thread():
    # the test machine's 2 cores are shared: one torch thread avoids oversubscription
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CFG = AssocConfig(history=3, max_candidates=4, d_model=16, heads=2, layers=2, track_layers=1, dropout=0.0)


def random_batch(b: int = 5, d: int = 6, hsv: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c, h = CFG.max_candidates, CFG.history
    cand_mask = torch.ones(b, c, dtype=torch.bool)
    cand_mask[0, 2:] = False      # sample 0 has 2 candidates
    cand_mask[1, 1:] = False      # sample 1 has 1
    hist_mask = torch.ones(b, h, dtype=torch.bool)
    hist_mask[:, 0] = False
    return {
        "hist": torch.randn(b, h, len(HIST_FIELDS), generator=g), "hist_mask": hist_mask,
        "track": torch.randn(b, len(TRACK_FIELDS), generator=g), "track_emb": torch.randn(b, d, generator=g),
        "track_hsv": torch.rand(b, hsv, generator=g), "cand": torch.randn(b, c, len(PAIR_FIELDS), generator=g),
        "cand_mask": cand_mask, "cand_emb": torch.randn(b, c, d, generator=g),
        "cand_hsv": torch.rand(b, c, hsv, generator=g), "label": torch.tensor([1, 4, 0, 3, 2])[:b],
    }


@pytest.mark.parametrize("embed_dim,hsv_bins", [(6, 0), (0, 0), (6, 5)])
def test_logits_layout_and_masking(embed_dim, hsv_bins):
    torch.manual_seed(0)
    model = AssocTransformer(CFG, embed_dim, hsv_bins).eval()
    batch = random_batch(d=embed_dim, hsv=hsv_bins)
    logits = model(batch)
    assert logits.shape == (5, CFG.max_candidates + 1) and logits.dtype == torch.float32
    assert (logits[0, 2:4] == MASKED_LOGIT).all() and (logits[1, 1:4] == MASKED_LOGIT).all()
    assert torch.isfinite(logits).all() and (logits[:, -1] > MASKED_LOGIT).all()  # "no match" is never masked
    prob = logits.softmax(-1)
    assert prob[0, 2:4].sum() == 0 and torch.allclose(prob.sum(-1), torch.ones(5))
    loss = assoc_loss(logits, batch["label"])
    assert torch.isfinite(loss)


def test_candidates_are_a_set():
    # no positional code on candidates: permuting them permutes the logits (the none logit stays)
    torch.manual_seed(0)
    model = AssocTransformer(CFG, 6).eval()
    batch = random_batch()
    perm = torch.tensor([2, 0, 3, 1])
    permuted = dict(batch)
    for key in ("cand", "cand_mask", "cand_emb", "cand_hsv"):
        permuted[key] = batch[key][:, perm]
    a, b = model(batch), model(permuted)
    torch.testing.assert_close(b[:, :4], a[:, :4][:, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b[:, 4], a[:, 4], atol=1e-5, rtol=1e-5)


def test_appearance_reaches_the_logits():
    torch.manual_seed(0)
    model = AssocTransformer(CFG, 6).eval()
    batch = random_batch()
    other = dict(batch, cand_emb=torch.randn_like(batch["cand_emb"]))
    assert not torch.allclose(model(batch)[2:], model(other)[2:])


def test_grad_checkpointing_gives_the_same_gradients():
    batch = random_batch()
    grads = []
    for ratio in (0.0, 1.0):
        torch.manual_seed(0)
        model = AssocTransformer(CFG, 6).train()
        model.set_grad_checkpointing(ratio)
        assert model._checkpointed == round(ratio * 3)
        assoc_loss(model(batch), batch["label"]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1])
    with pytest.raises(ValueError, match="ratio"):
        model.set_grad_checkpointing(1.5)
