import json, os, sys, time
import numpy as np
from qa_engine.engine import QAEngine
from qa_engine.data import load_squad
from qa_engine.metrics import squad_metrics
path = sys.argv[1]
n = int(sys.argv[2])
ex = load_squad("/work/shared/data/squad-v1.1/dev-v1.1.json.gz").examples[:n]
out = {"loadavg": os.getloadavg()}
answers = {}
for device in ("openvino", "cpu"):
    t = time.perf_counter()
    e = QAEngine(path, device=device, threads=2)
    out[device] = {"providers": e.providers, "self_check": e.self_check.summary(), "batch_invariant": e.batch_invariant,
                   "openvino_share": getattr(e.session, "openvino_share", None)}
    q, c = [x.question for x in ex], [x.context for x in ex]
    b32 = e.predict(q, c, batch_size=32)
    b1 = [e(qq, cc) for qq, cc in zip(q[:60], c[:60])]
    answers[device] = [a.text for a in b32]
    out[device]["b32_vs_b1_differ"] = sum(a.text != b.text for a, b in zip(b32[:60], b1))
    out[device]["f1"] = squad_metrics({x.id: a.text for x, a in zip(ex, b32)}, ex, False)["f1"]
    out[device]["seconds"] = round(time.perf_counter() - t, 1)
out["answers_agree_openvino_vs_cpu"] = float(np.mean([a == b for a, b in zip(answers["openvino"], answers["cpu"])]))
print(json.dumps(out, indent=2))
