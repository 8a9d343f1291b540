"""Module bookkeeping: registration, names, modes, devices, state_dict and its errors."""
import copy

import numpy as np
import pytest

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Tensor


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.register_buffer("count", np.zeros((), dtype=np.int64))
        self.register_buffer("scratch", Tensor(np.zeros(2)), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.drop(F.relu(self.bn(self.fc(x)))) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Block(), nn.Linear(4, 2))
        self.heads = nn.ModuleList([nn.Linear(2, 1), nn.Linear(2, 1, bias=False)])

    def forward(self, x):
        h = self.encoder(x)
        return [head(h) for head in self.heads]


NET_PARAMS = ["encoder.0.scale", "encoder.0.fc.weight", "encoder.0.fc.bias", "encoder.0.bn.weight",
              "encoder.0.bn.bias", "encoder.1.weight", "encoder.1.bias", "heads.0.weight",
              "heads.0.bias", "heads.1.weight"]


# --- Parameter ------------------------------------------------------------

def test_parameter_is_a_float_leaf_that_requires_grad():
    p = nn.Parameter([1, 2, 3])
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf and p.dtype == np.float32
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # float64 arrays stay float64
    src = np.ones(3, dtype=np.float32)
    q = nn.Parameter(src)
    src[0] = 5
    assert q.data[0] == 1  # the data is copied
    assert "Parameter containing" in repr(q)


def test_parameter_rejects_integer_arrays():
    with pytest.raises(TypeError, match="floating point.*int64"):
        nn.Parameter(np.arange(3))


def test_ops_on_parameters_give_plain_tensors():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    y = p * 2
    assert type(y) is Tensor and not y.is_leaf


# --- registration and traversal -------------------------------------------

def test_named_parameters_dotted_names_and_count():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == NET_PARAMS
    assert len(list(net.parameters())) == 10
    n_values = sum(p.size for p in net.parameters())
    assert n_values == 4 + (12 + 4) + (4 + 4) + (8 + 2) + (2 + 1) + 2


def test_buffers_are_not_parameters_but_are_saved():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == ["encoder.0.count", "encoder.0.scratch",
                                                  "encoder.0.bn.running_mean", "encoder.0.bn.running_var"]
    param_ids = {id(p) for p in net.parameters()}
    assert all(id(b) not in param_ids for b in net.buffers())
    keys = list(net.state_dict())
    assert "encoder.0.bn.running_mean" in keys and "encoder.0.count" in keys
    assert "encoder.0.scratch" not in keys  # non-persistent
    assert set(keys) == set(NET_PARAMS) | {"encoder.0.count", "encoder.0.bn.running_mean",
                                          "encoder.0.bn.running_var"}


def test_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["encoder", "heads"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "ModuleList"]
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "encoder", "encoder.0", "encoder.0.fc", "encoder.0.bn", "encoder.0.drop",
                     "encoder.1", "heads", "heads.0", "heads.1"]
    assert len(list(net.modules())) == 10


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias"]


def test_plain_attributes_and_reassignment():
    b = Block()
    assert b.note == "plain attribute" and "note" not in dict(b.named_parameters())
    old_order = [n for n, _ in b.named_parameters(recurse=False)]
    b.scale = nn.Parameter(np.zeros(4, dtype=np.float32))  # keeps its place in the order
    assert [n for n, _ in b.named_parameters(recurse=False)] == old_order
    with pytest.raises(TypeError, match="Block.scale is a parameter"):
        b.scale = Tensor(np.zeros(4))
    b.scale = None
    assert "scale" not in dict(b.named_parameters())
    del b.fc
    assert not hasattr(b, "fc")
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'nothing'"):
        b.nothing


def test_forgetting_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_forward_not_defined():
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        nn.Module()(1)


# --- modes --------------------------------------------------------------------

def test_train_eval_propagate_recursively():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.encoder.train()
    assert net.encoder[0].bn.training and not net.training and not net.heads[0].training
    net.train()
    assert all(m.training for m in net.modules())


def test_requires_grad_and_zero_grad():
    net = Net()
    x = tinygen.randn(5, 3)
    sum(y.sum() for y in net(x)).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_(True)
    assert all(p.requires_grad for p in net.parameters())


def test_to_cpu_keeps_parameter_identity_and_astype():
    net = Net()
    before = [id(p) for p in net.parameters()]
    assert net.to("cpu") is net
    assert [id(p) for p in net.parameters()] == before
    net.double()
    assert [id(p) for p in net.parameters()] == before
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.encoder[0].count.dtype == np.int64  # integer buffers are left alone
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not tinygen.cuda_available(), reason="needs a CUDA GPU")
def test_to_cuda_and_back():
    net = Net()
    ids = [id(p) for p in net.parameters()]
    ref = net.state_dict()
    net.to("cuda")
    assert all(p.device == "cuda" for p in net.parameters())
    assert [id(p) for p in net.parameters()] == ids
    net.to("cpu")
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, ref[k])


def test_apply_visits_every_module():
    seen = []
    Net().apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 4


def test_deepcopy_gives_independent_parameters():
    net = Net()
    twin = copy.deepcopy(net)
    for (n1, p1), (n2, p2) in zip(net.named_parameters(), twin.named_parameters()):
        assert n1 == n2 and p1 is not p2 and isinstance(p2, nn.Parameter)
        np.testing.assert_array_equal(p1.data, p2.data)
    twin.heads[0].weight.data[...] = 7
    assert not (net.heads[0].weight.data == 7).any()


def test_repr_is_readable():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.BatchNorm1d(3)))
    assert text == ("Sequential(\n"
                    "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
                    "  (1): ReLU()\n"
                    "  (2): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True)\n"
                    ")")
    assert "(heads): ModuleList(\n    (0): Linear" in repr(Net())


# --- containers -----------------------------------------------------------------

def test_sequential_indexing_len_iter_and_forward():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    x = tinygen.randn(4, 2)
    np.testing.assert_allclose(seq(x).numpy(), c(b(a(x))).numpy())
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]


def test_sequential_with_named_modules():
    from collections import OrderedDict
    seq = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("act", nn.Tanh())]))
    assert [n for n, _ in seq.named_parameters()] == ["hidden.weight", "hidden.bias"]
    assert seq(tinygen.randn(1, 2)).shape == (1, 3)


def test_module_list():
    ml = nn.ModuleList()
    ml.append(nn.Linear(1, 1)).extend([nn.Linear(1, 2)])
    assert len(ml) == 2 and ml[1].out_features == 2
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    ml[0] = nn.Linear(1, 3)
    assert ml[0].out_features == 3
    with pytest.raises(TypeError, match="expected a Module, got int"):
        ml.append(3)
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        ml(1)


# --- state_dict -------------------------------------------------------------------

def test_state_dict_holds_copies():
    net = Net()
    sd = net.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["encoder.1.weight"][...] = 123
    assert not (net.encoder[1].weight.data == 123).any()


def test_state_dict_round_trip_restores_outputs():
    tinygen.manual_seed(1)
    src = Net()
    src.train()
    src(tinygen.randn(8, 3))  # moves the BatchNorm running statistics off their initial values
    src.eval()
    tinygen.manual_seed(2)
    dst = Net().eval()
    x = tinygen.randn(5, 3)
    assert not np.allclose(src(x)[0].numpy(), dst(x)[0].numpy())
    ids = [id(p) for p in dst.parameters()]
    arrays = [p.data for p in dst.parameters()]
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for a, b in zip(src(x), dst(x)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the same Parameter objects and arrays, their dtype kept
    assert [id(p) for p in dst.parameters()] == ids
    assert all(p.data is a for p, a in zip(dst.parameters(), arrays))
    assert dst.encoder[0].count.dtype == np.int64


def test_state_dict_round_trip_through_a_checkpoint_file(tmp_path):
    src = Net()
    path = tmp_path / "net.npz"
    tinygen.save({"model": src.state_dict()}, str(path))
    dst = Net()
    dst.load_state_dict(tinygen.load(str(path))["model"])
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_load_casts_to_the_module_dtype():
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})  # float64 in
    assert lin.weight.dtype == np.float32 and (lin.weight.data == 1).all()


def test_load_errors_name_missing_unexpected_and_mismatched_entries():
    lin = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = lin.state_dict()
    del state["1.running_var"]                    # missing
    state["1.extra"] = np.zeros(1)                # unexpected
    state["0.weight"] = np.zeros((3, 5))          # wrong shape
    before = lin.state_dict()
    with pytest.raises(nn.LoadStateDictError) as info:
        lin.load_state_dict(state)
    msg = str(info.value)
    assert "missing (in the module, not in the state): 1.running_var" in msg
    assert "unexpected (in the state, not in the module): 1.extra" in msg
    assert "shape mismatch for '0.weight': the module has (3, 2), the state has (3, 5)" in msg
    assert info.value.missing == ["1.running_var"] and info.value.unexpected == ["1.extra"]
    # nothing was changed by the failed load
    for k, v in lin.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_non_strict_skips_names_but_not_shapes():
    lin = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = {"0.weight": np.full((3, 2), 0.5), "junk": np.zeros(2)}
    result = lin.load_state_dict(state, strict=False)
    assert (lin[0].weight.data == 0.5).all()
    assert result.unexpected_keys == ["junk"] and "0.bias" in result.missing_keys
    with pytest.raises(nn.LoadStateDictError, match="shape mismatch for '0.bias'"):
        lin.load_state_dict({"0.bias": np.zeros(4)}, strict=False)
