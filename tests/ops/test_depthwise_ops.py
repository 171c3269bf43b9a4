"""kaffe.ops.depthwise against a dense grouped convolution (torch)."""
import numpy as np
import pytest

from kaffe.ops.depthwise import depthwise_backward, depthwise_forward


@pytest.mark.parametrize("stride, pad, dilation", [((1, 1), (1, 1), (1, 1)),
                                                   ((2, 1), (0, 2), (1, 2))])
def test_matches_torch_grouped_conv(stride, pad, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((3, 1, 3, 2))
    b = rng.standard_normal(3)
    y = depthwise_forward(x, w, b, stride, pad, dilation)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, torch.tensor(b), stride, pad,
                                    dilation, groups=3)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw = depthwise_backward(dy, x, w, stride, pad, dilation)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-12, atol=1e-12)
