import math

import pytest
import torch
import torch.nn.functional as F

from eqr_solve.model import Carry, EqR, count_parameters, flops_per_segment, trunc_normal_, variant
from tests.conftest import tiny_config


def test_segment_shapes_and_detached_carry(tiny_model):
    x = torch.randint(1, 6, (3, 4, 4))
    carry = tiny_model.initial_carry(3, 16)
    out = tiny_model(carry, x)
    assert out.logits.shape == (3, 16, 6)
    assert out.q_halt.shape == (3,)
    assert out.carry.z_H.shape == (3, 16, 32) and out.carry.z_L.shape == (3, 16, 32)
    assert not out.carry.z_H.requires_grad and not out.carry.z_L.requires_grad


def test_halting_head_starts_silent(tiny_model):
    out = tiny_model(tiny_model.initial_carry(2, 16), torch.randint(1, 6, (2, 4, 4)))
    assert torch.allclose(out.q_halt, torch.full((2,), -5.0))


def test_only_last_cycle_has_gradients():
    torch.manual_seed(0)
    model = EqR(tiny_config(H_cycles=3)).train()
    calls = []
    original = model.f

    def spy(z, inj, rope, gen, noise, pool=None):
        calls.append(torch.is_grad_enabled())
        return original(z, inj, rope, gen, noise, pool)

    model.f = spy
    out = model(model.initial_carry(2, 16), torch.randint(1, 6, (2, 4, 4)))
    cfg = model.cfg
    per_cycle = cfg.L_cycles + 1
    assert calls == [False] * per_cycle * (cfg.H_cycles - 1) + [True] * per_cycle
    out.logits.sum().backward()
    assert model.embed.weight.grad.abs().sum() > 0


def test_random_init_is_random_and_truncated():
    torch.manual_seed(0)
    model = EqR(tiny_config(init_std=1.0))
    a, b = model.initial_carry(64, 16), model.initial_carry(64, 16)
    assert not torch.equal(a.z_H, b.z_H) and not torch.equal(a.z_H, a.z_L)
    z = a.z_H
    assert abs(z.std().item() - 1.0) < 0.05
    assert z.abs().max().item() <= 2.2737 + 1e-4


def test_trm_variant_is_deterministic_and_fixed_init():
    torch.manual_seed(0)
    cfg = variant(tiny_config(), "trm")
    assert cfg.lambda_ == 1.0 and cfg.noise_scale == 0.0 and not cfg.random_init
    model = EqR(cfg).eval()
    c = model.initial_carry(2, 16)
    assert torch.equal(c.z_H[0, 0], c.z_H[1, 5])  # one vector broadcast everywhere
    x = torch.randint(1, 6, (2, 4, 4))
    assert torch.equal(model(c, x).logits, model(c, x).logits)


def test_noise_makes_runs_differ_and_generator_reproduces(tiny_model):
    x = torch.randint(1, 6, (2, 4, 4))
    c = tiny_model.initial_carry(2, 16)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(tiny_model(c, x, g1).logits, tiny_model(c, x, g2).logits)
    assert not torch.equal(tiny_model(c, x).logits, tiny_model(c, x).logits)


def test_damped_update_formula():
    torch.manual_seed(0)
    model = EqR(tiny_config(lambda_=0.95, noise_scale=0.0))
    z, inj = torch.randn(16, 1, 32), torch.randn(16, 1, 32)  # sequence-major inside
    u = z + inj
    for block in model.blocks:
        u = block(u, None, (4, 4))
    expected = 0.05 * z + 0.95 * u
    assert torch.allclose(model.f(z, inj, (None, (4, 4)), None, 0.0), expected, atol=1e-6)


def test_reset_rows_only_touches_halted(tiny_model):
    c = tiny_model.initial_carry(4, 16)
    rows = torch.tensor([True, False, True, False])
    r = tiny_model.reset_rows(c, rows)
    assert torch.equal(r.z_H[1], c.z_H[1]) and torch.equal(r.z_L[3], c.z_L[3])
    assert not torch.equal(r.z_H[0], c.z_H[0])


@pytest.mark.parametrize("pos", ["rope", "rope2d", "none"])
def test_attention_model_any_board_size(pos):
    torch.manual_seed(0)
    model = EqR(tiny_config(mixer="attn", pos_encoding=pos, seq_len=0)).eval()
    for H, W in [(5, 5), (6, 9)]:
        out = model(model.initial_carry(2, H * W), torch.randint(1, 6, (2, H, W)))
        assert out.logits.shape == (2, H * W, 6)


def test_conv_mixer_is_the_depthwise_3x3_convolution():
    """Each cell: a per-channel weighted sum of itself and its 8 neighbours, zero off the board."""
    torch.manual_seed(0)
    model = EqR(tiny_config(mixer="conv", seq_len=0))
    mix = model.blocks[0].mix
    h = torch.randn(3 * 5, 2, 32)  # [L, B, D] on a 3x5 board
    grid = h.view(3, 5, 2, 32)
    expected = torch.zeros_like(grid)
    for y in range(3):
        for x in range(5):
            for i in range(3):
                for j in range(3):
                    if 0 <= y + i - 1 < 3 and 0 <= x + j - 1 < 5:
                        expected[y, x] += grid[y + i - 1, x + j - 1] * mix.weight[i, j]
    assert torch.allclose(mix(h, (3, 5)), expected.view(15, 2, 32), atol=1e-5)


@pytest.mark.parametrize("dim", [-1, 0])
def test_rms_norm_accumulates_in_fp32(dim):
    from eqr_solve.model import rms_norm

    x = (torch.randn(9, 4, 64) * 3).bfloat16().float()  # exact in bf16 too
    ref = x * torch.rsqrt(x.pow(2).mean(dim, keepdim=True) + 1e-5)
    assert torch.allclose(rms_norm(x.clone(), dim), ref, atol=1e-5)
    with torch.no_grad():  # bf16 in, bf16 out, within two roundings of the fp32 result
        got = rms_norm(x.bfloat16(), dim)
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), ref, rtol=2**-7, atol=0)


def test_bf16_model_gives_fp32_logits_of_the_fp32_head():
    """The residual compares logits across segments: outside autocast they are the fp32
    product of the bf16 latent and head weight, not a bf16 result widened afterwards."""
    torch.manual_seed(0)
    model = EqR(tiny_config()).eval().to(torch.bfloat16)
    carry = model.initial_carry(2, 16, dtype=torch.bfloat16)
    with torch.no_grad():
        out = model(carry, torch.randint(1, 6, (2, 4, 4)), noise=0.0)
    z = out.carry.z_H.float()
    expected = z @ model.lm_head.weight.float().t()
    assert out.logits.dtype == torch.float32
    assert torch.allclose(out.logits, expected, atol=1e-5, rtol=1e-5)
    assert not torch.equal(out.logits, expected.bfloat16().float())


def test_inference_noise_pool_is_standard_normal_and_seeded():
    """On CPU without gradients each segment's noise comes from one pool: per element N(0, 1),
    reproducible from the generator; in training mode every f-call draws afresh."""
    torch.manual_seed(0)
    model = EqR(tiny_config(noise_scale=0.01)).eval()
    z = torch.zeros(16, 8, 32)
    with torch.no_grad():
        pool = model.noise_pool(z, torch.Generator().manual_seed(3))
        assert pool.shape == (2 * z.numel(),) and pool.dtype == z.dtype
        assert torch.equal(pool, model.noise_pool(z, torch.Generator().manual_seed(3)))
        model.blocks.requires_grad_(False)
        for block in model.blocks:  # the blocks output 0: f(z) is the noise alone
            block.forward = lambda u, *board: torch.zeros_like(u)
        g = torch.Generator().manual_seed(4)
        draws = torch.stack([model.f(z, z, (None, (4, 4)), g, 1.0, pool) for _ in range(200)])
    assert abs(draws.mean().item()) < 0.01 and abs(draws.std().item() - 1.0) < 0.01
    assert not torch.equal(draws[0], draws[1])  # each f-call reads another window
    assert model.train().noise_pool(z, None) is None
    with torch.no_grad():
        assert model.noise_pool(z, None) is None  # the trainer's no-grad cycles draw afresh


def test_conv_model_is_local_and_size_agnostic():
    """One f-call moves information at most L_layers cells; any board size runs; the
    softmin halting logit is a smooth minimum of the cells' logits."""
    torch.manual_seed(0)
    model = EqR(tiny_config(mixer="conv", seq_len=0, L_layers=1, noise_scale=0.0,
                            q_pool="softmin")).eval()
    for shape in [(5, 5), (7, 11)]:
        z = torch.randn(shape[0] * shape[1], 1, 32)
        z2 = z.clone()
        z2[0] += 1.0  # perturb the top-left cell
        board = (None, shape)
        zero = torch.zeros_like(z)
        moved = (model.f(z2, zero, board, None, 0.0)
                 - model.f(z, zero, board, None, 0.0)).abs().sum(-1)
        moved = moved.view(*shape)
        assert moved[:2, :2].min() > 0 and moved[2:].max() == 0 and moved[:, 2:].max() == 0
    c = model.initial_carry(2, 49)
    with torch.no_grad():
        model.q_head.weight.normal_()
    out = model(c, torch.randint(1, 6, (2, 7, 7)))
    assert out.logits.shape == (2, 49, model.cfg.vocab_size) and out.q_halt.shape == (2,)
    z_H = out.carry.z_H  # [B, L, D]
    cells = model.q_head(z_H).squeeze(-1)  # [B, L]
    assert torch.allclose(out.q_halt, -torch.logsumexp(-cells, dim=1), atol=1e-5)
    assert (out.q_halt <= cells.min(1).values).all()  # no cell can be outvoted
    model.cfg.q_pool = "mean"
    out = model(c, torch.randint(1, 6, (2, 7, 7)))
    assert torch.allclose(out.q_halt, model.q_head(out.carry.z_H.mean(1)).squeeze(-1), atol=1e-5)


def test_rope2d_distinguishes_rows_from_columns():
    torch.manual_seed(0)
    model = EqR(tiny_config(mixer="attn", pos_encoding="rope2d", seq_len=0))
    cos, _ = model.rope(3, 3)
    assert not torch.equal(cos[1], cos[3])  # (0,1) and (1,0) differ


def test_down_projection_init_makes_recurrence_contractive():
    """A small change of z0 must not blow up through one segment (see docs/deviations.md)."""
    torch.manual_seed(0)
    model = EqR(tiny_config(hidden_size=64, noise_scale=0.0)).eval()
    c = model.initial_carry(8, 16)
    x = torch.randint(1, 6, (8, 4, 4))
    c2 = Carry(c.z_H + 1e-3 * torch.randn_like(c.z_H), c.z_L)
    a, b = model(c, x).logits, model(c2, x).logits
    assert ((a - b).norm() / a.norm()).item() < 0.01


def test_trunc_normal_std_exact():
    t = trunc_normal_(torch.empty(200_000), 0.5, torch.Generator().manual_seed(0))
    assert math.isclose(t.std().item(), 0.5, rel_tol=0.02)


def test_paper_sudoku_parameter_count():
    cfg = tiny_config(vocab_size=11, seq_len=81, hidden_size=512, num_heads=8, L_layers=2,
                      H_cycles=3, L_cycles=6, expansion=4.0)
    model = EqR(cfg)
    # the reference's 4,855,298 has a 2-output q head; ours has one output (513 fewer)
    assert count_parameters(model) == 4_855_298 - 513
    assert abs(flops_per_segment(cfg, 81) / 1e9 - 18.7) < 0.2


def test_token_mlp_is_the_transposed_swiglu():
    """The sequence-major TokenMLP computes the reference's MLP over positions."""
    torch.manual_seed(0)
    model = EqR(tiny_config())
    mix = model.blocks[0].mix
    h = torch.randn(3, 16, 32)  # [B, L, D]
    t = h.transpose(1, 2)  # reference: [B, D, L], SwiGLU over L
    gate, up = torch.nn.functional.linear(t, mix.gate_up.weight).chunk(2, -1)
    ref = torch.nn.functional.linear(torch.nn.functional.silu(gate) * up, mix.down.weight)
    got = mix(h.transpose(0, 1).contiguous())  # [L, B, D]
    assert torch.allclose(got.permute(1, 2, 0), ref, atol=1e-5)


def test_compiled_blocks_match_eager():
    torch.manual_seed(0)
    model = EqR(tiny_config(noise_scale=0.0)).eval()
    x = torch.randint(1, 6, (3, 4, 4))
    c = model.initial_carry(3, 16)
    eager = model(c, x).logits
    assert model.compile_blocks()
    assert "_orig_mod" not in "".join(model.state_dict())
    assert torch.allclose(model(c, x).logits, eager, atol=1e-4)


def test_chunked_inference_matches_one_batch(monkeypatch):
    """Big CPU batches run in row chunks without gradients: same logits, carry and q."""
    import eqr_solve.model as model_module

    torch.manual_seed(0)
    model = EqR(tiny_config(noise_scale=0.0)).eval()
    x = torch.randint(1, 6, (7, 4, 4))
    c = model.initial_carry(7, 16)
    with torch.no_grad():
        whole = model(c, x)
        monkeypatch.setattr(model_module, "CPU_CHUNK_BYTES", 1)
        assert model.rows_per_chunk(16) == 1
        chunked = model(c, x)
    assert torch.allclose(whole.logits, chunked.logits, atol=1e-5)
    assert torch.allclose(whole.carry.z_H, chunked.carry.z_H, atol=1e-5)
    assert torch.allclose(whole.q_halt, chunked.q_halt, atol=1e-5)


def test_paper_model_chunks_sixteen_rows():
    from eqr_solve.bench import PAPER_SUDOKU

    assert EqR(PAPER_SUDOKU).rows_per_chunk(81) == 16


@pytest.mark.parametrize("mixer", ["mlp_t", "conv", "attn"])
def test_fused_cpu_path_matches_plain_pytorch(mixer, monkeypatch):
    """Inference through oneDNN with fused ops and in-place norms = the autograd-safe path."""
    import eqr_solve.cpu_engine as model_module

    if not model_module.available():
        pytest.skip("no oneDNN in this PyTorch build")
    torch.manual_seed(0)
    model = EqR(tiny_config(noise_scale=0.0, mixer=mixer)).eval()
    x = torch.randint(1, 6, (3, 4, 4))
    c = model.initial_carry(3, 16)
    with torch.no_grad():
        monkeypatch.setattr(model_module, "ENABLED", True)
        fused = model(c, x)
        monkeypatch.setattr(model_module, "ENABLED", False)
        plain = model(c, x)
    assert torch.allclose(fused.logits, plain.logits, atol=1e-4)
    assert torch.allclose(fused.carry.z_L, plain.carry.z_L, atol=1e-4)
    assert torch.allclose(fused.q_halt, plain.q_halt, atol=1e-4)


@pytest.mark.parametrize("post", ["none", "swish", "mul", "add"])
def test_linear_post_ops(post):
    from eqr_solve.cpu_engine import available, linear

    if not available():
        pytest.skip("no oneDNN in this PyTorch build")
    x, w, other = torch.randn(5, 8), torch.randn(6, 8), torch.randn(5, 6)
    y = x @ w.t()
    expected = {"none": y, "swish": F.silu(y), "mul": y * other, "add": y + other}[post]
    with torch.no_grad():
        assert torch.allclose(linear(x, w, post, other if post in ("mul", "add") else None),
                              expected, atol=1e-5)


def test_inference_leaves_carry_and_inputs_untouched(tiny_model):
    """The no-autograd path works in place on its own intermediates only."""
    x = torch.randint(1, 6, (3, 4, 4))
    c = tiny_model.initial_carry(3, 16)
    z_H, z_L, x0 = c.z_H.clone(), c.z_L.clone(), x.clone()
    with torch.inference_mode():
        tiny_model(c, x)
    assert torch.equal(c.z_H, z_H) and torch.equal(c.z_L, z_L) and torch.equal(x, x0)


def test_packed_weights_follow_every_weight_change(monkeypatch):
    """Inference packs weights for oneDNN once; an optimizer step or a load must re-pack."""
    import copy

    import eqr_solve.cpu_engine as model_module

    if not model_module.available():
        pytest.skip("no oneDNN in this PyTorch build")
    torch.manual_seed(0)
    model = EqR(tiny_config(noise_scale=0.0)).eval()
    x = torch.randint(1, 6, (2, 4, 4))
    c = model.initial_carry(2, 16)
    with torch.no_grad():
        before = model(c, x).logits
        for p in model.parameters():  # what an optimizer step does: in place
            p.mul_(0.5)
        after = model(c, x).logits
        monkeypatch.setattr(model_module, "ENABLED", False)
        plain = model(c, x).logits
    assert not torch.allclose(before, after, atol=1e-3)
    assert torch.allclose(after, plain, atol=1e-4)
    assert model.blocks[0].mlp in model_module._PACKED  # packed once used...
    clone = copy.deepcopy(model)  # ...but copies neither share nor carry the packed tensors
    assert clone.blocks[0].mlp not in model_module._PACKED
    with torch.no_grad():
        assert torch.allclose(clone(c, x).logits, after, atol=1e-4)


def test_model_built_under_inference_mode_runs_and_follows_changes(monkeypatch):
    """Inference tensors have no version counter: their weights are packed on every call,
    so a model built and changed inside ``torch.inference_mode`` still runs correctly."""
    import eqr_solve.cpu_engine as model_module

    torch.manual_seed(0)
    with torch.inference_mode():
        model = EqR(tiny_config(noise_scale=0.0)).eval()
        x = torch.randint(1, 6, (2, 4, 4))
        c = model.initial_carry(2, 16)
        model(c, x)
        for p in model.parameters():
            p.mul_(0.5)
        after = model(c, x).logits
        monkeypatch.setattr(model_module, "ENABLED", False)
        plain = model(c, x).logits
    assert torch.allclose(after, plain, atol=1e-4)
