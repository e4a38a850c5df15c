"""The fast training forward pass must equal the reference packed forward pass."""
import torch

from training.model import MortalityLSTM


def test_unpadded_gather_forward_equals_the_packed_forward():
    torch.manual_seed(0)
    model = MortalityLSTM(13, hidden=16, dropout=0.0).eval()
    lengths = torch.tensor([48, 1, 17, 30, 2, 48, 5])
    x = torch.randn(len(lengths), 48, 13)
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = 5.0  # whatever lies past a stay's end must not matter
    with torch.no_grad():
        packed = model(x, lengths)
        gathered = model.forward_unpadded_gather(x, lengths)
    assert torch.max(torch.abs(packed - gathered)) < 1e-6


def test_replicated_loss_is_the_mix_of_every_real_hours_loss_and_the_last_hours():
    """Reference: the packed forward pass of each prefix of each stay, one at a time."""
    from training.fit import replicated_loss
    torch.manual_seed(1)
    model = MortalityLSTM(7, hidden=8, dropout=0.0).eval()
    lengths = torch.tensor([5, 1, 3])
    x = torch.randn(len(lengths), 6, 7)
    y = torch.tensor([1.0, 0.0, 0.3])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    alpha = 0.25
    with torch.no_grad():
        per_stay, last = [], []
        for b, n in enumerate(lengths.tolist()):
            hours = [bce(model(x[b:b + 1], torch.tensor([t])), y[b:b + 1]) for t in range(1, n + 1)]
            per_stay.append(torch.stack(hours).mean())
            last.append(hours[-1])
        expected = alpha * torch.stack(per_stay).mean() + (1 - alpha) * torch.stack(last).mean()
        got = replicated_loss(model, x, lengths, y, alpha, torch.nn.BCEWithLogitsLoss())
    assert abs(float(got) - float(expected)) < 1e-6


def test_gru_unpadded_gather_forward_equals_the_packed_forward():
    from training.model import MortalityGRU
    torch.manual_seed(2)
    model = MortalityGRU(13, hidden=16, dropout=0.0).eval()
    lengths = torch.tensor([48, 1, 17, 30, 2])
    x = torch.randn(len(lengths), 48, 13)
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = 5.0
    with torch.no_grad():
        assert torch.max(torch.abs(model(x, lengths) - model.forward_unpadded_gather(x, lengths))) < 1e-6
