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
