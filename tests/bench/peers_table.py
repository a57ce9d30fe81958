#!/usr/bin/python3
"""Summarises tests/bench/peers.sh: the median over rounds of every engine's
crops/s, and reid's ratio to each peer (usage: peers_table.py WORK ROUNDS)."""
import json
import os
import statistics
import sys


def load(work, prefix, rounds):
    out = []
    for r in range(1, rounds + 1):
        p = os.path.join(work, '%s-%d.json' % (prefix, r))
        if os.path.exists(p):
            with open(p) as f:
                out.append(json.load(f))
    return out


def main():
    work, rounds = sys.argv[1], int(sys.argv[2])
    rows = {}  # (engine, precision, batch) -> [crops/s per round]

    def add(key, v):
        if v and v > 0:
            rows.setdefault(key, []).append(v)

    reid_runs = load(work, 'reid', rounds)
    for j in reid_runs:
        r = j['resnet50_ls1_256x128']
        for p in ('fp32', 'bf16', 'int8'):
            for b in (1, 16):
                add(('reid', p, b), r.get('%s_batch%d' % (p, b)))
    for j in load(work, 'torch', rounds):
        r = j.get('resnet50_ls1_256x128', {})
        add(('PyTorch TorchScript', 'fp32', 1), r.get('batch1_crops_per_s'))
        add(('PyTorch TorchScript', 'fp32', 16), r.get('batch16_crops_per_s'))
    errors, versions, loads = {}, {}, []
    for j in load(work, 'ovort', rounds):
        versions.update(j.get('versions', {}))
        errors.update(j.get('errors', {}))
        loads += [j['loadavg_start'][0], j['loadavg_end'][0]]
        for k, v in j['crops_per_s'].items():
            name, prec, b = k.split('_')
            add(({'ort': 'ONNX Runtime', 'ov': 'OpenVINO'}[name], prec, int(b[1:])), v)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print('\nResNet-50 ls1 256x128, crops/s, median of %d rounds (%s)'
          % (len(reid_runs), ', '.join('%s %s' % kv for kv in sorted(versions.items())) or 'no venv peers'))
    if loads:
        print('load average during the peers: %.1f .. %.1f' % (min(loads), max(loads)))
    engines = ['reid', 'PyTorch TorchScript', 'ONNX Runtime', 'OpenVINO']
    print('%-22s %-6s %12s %12s' % ('engine', 'prec', 'batch 1', 'batch 16'))
    for e in engines:
        for p in ('fp32', 'bf16', 'int8'):
            if (e, p, 1) in med or (e, p, 16) in med:
                print('%-22s %-6s %12s %12s' % (e, p, *('%.1f' % med[(e, p, b)] if (e, p, b) in med
                                                         else '-' for b in (1, 16))))
    for b in (1, 16):
        if ('reid', 'int8', b) in med and ('reid', 'bf16', b) in med:
            print('reid int8 / reid bf16, batch %d: %.2fx (target >= 1.8x)'
                  % (b, med[('reid', 'int8', b)] / med[('reid', 'bf16', b)]))
    print('\nreid / peer (same run)')
    for e in engines[1:]:
        for p in ('fp32', 'bf16', 'int8'):
            for b in (1, 16):
                if (e, p, b) in med:
                    mine = med.get(('reid', p, b))
                    print('  %-20s %-5s batch %-3d %s' % (e, p, b, '%.2fx' % (mine / med[(e, p, b)])
                                                         if mine else 'reid has no %s' % p))
    for k, v in errors.items():
        print('  %s not run: %s' % (k, v))


if __name__ == '__main__':
    main()
