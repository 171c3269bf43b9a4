"""The net's graph laid out in layered rows for ``kaffe viz`` (no Graphviz)."""
import math

from .report_model import Graph, GraphEdge, GraphNode


# -- the graph ----------------------------------------------------------------
NODE_WIDTH = 236
DUMMY_WIDTH = 14
LINE_HEIGHT = 15
RANK_GAP = 34
NODE_GAP = 26
MARGIN = 16


def node_lines(layers, node_layers):
    """How many text lines a node has: name, type · summary, the in-place
    layers (three per line), one per top shape."""
    extra = len(node_layers) - 1
    tops = max(1, len(layers[node_layers[-1]].tops))
    return 2 + math.ceil(extra / 3) + tops


def layout_graph(layers):
    """Lay the visible layers out in layered rows (a small Sugiyama).

    A node is a layer plus the in-place layers that follow it on the same
    blob before anything else reads it (conv → BatchNorm → Scale → ReLU is
    one box). Ranks are longest paths from the inputs; edges longer than one
    rank bend through dummy nodes; rows are ordered by barycentres (two
    sweeps each way) and x positions follow the real predecessors, so a long
    chain stays straight and its skip connections run beside it.
    """
    nodes = []                  # [[layer indices]]
    node_of_blob = {}           # blob -> node index holding its last version
    read = set()                # blobs read since their node was made
    alias = {}                  # auto-split top -> the blob it copies
    edges = set()
    for view in layers:
        if view.hidden:
            for top in view.row.top:
                alias[top] = alias.get(view.row.bottom[0],
                                       view.row.bottom[0])
            continue
        bottoms = [alias.get(b, b) for b in view.row.bottom]
        tops = list(view.row.top)
        in_place = (len(tops) == 1 and bottoms == tops
                    and tops[0] in node_of_blob and tops[0] not in read)
        if in_place:
            node = node_of_blob[tops[0]]
            nodes[node].append(view.index)
            continue
        node = len(nodes)
        nodes.append([view.index])
        for b in bottoms:
            if b in node_of_blob and node_of_blob[b] != node:
                edges.add((node_of_blob[b], node, b))
                read.add(b)
        for t in tops:
            node_of_blob[t] = node
            read.discard(t)
    by_index = {v.index: v for v in layers}
    n = len(nodes)
    preds = [[] for _ in range(n)]
    for s, t, _ in sorted(edges):
        preds[t].append(s)
    rank = [0] * n
    for i in range(n):
        rank[i] = max((rank[p] + 1 for p in preds[i]), default=0)
    # Dummy nodes for long edges.
    heights = [node_lines(by_index, group) * LINE_HEIGHT + 10
               for group in nodes]
    all_rank = list(rank)
    widths = [NODE_WIDTH] * n
    chains = []                 # (source, target, blob, [node ids])
    succ = [[] for _ in range(n)]
    pred_all = [[] for _ in range(n)]

    def add_dummy(r):
        all_rank.append(r)
        widths.append(DUMMY_WIDTH)
        heights.append(0)
        succ.append([])
        pred_all.append([])
        return len(all_rank) - 1

    for s, t, blob in sorted(edges):
        path = [s]
        for r in range(rank[s] + 1, rank[t]):
            path.append(add_dummy(r))
        path.append(t)
        for a, b in zip(path, path[1:]):
            succ[a].append(b)
            pred_all[b].append(a)
        chains.append((s, t, blob, path))
    total = len(all_rank)
    ranks = [[] for _ in range(max(all_rank, default=0) + 1)]
    for i in range(total):
        ranks[all_rank[i]].append(i)
    pos = {i: k for row in ranks for k, i in enumerate(row)}
    for sweep in range(4):
        down = sweep % 2 == 0
        order = ranks[1:] if down else ranks[-2::-1]
        for row in order:
            def key(i):
                near = pred_all[i] if down else succ[i]
                if not near:
                    return pos[i]
                return sum(pos[j] for j in near) / len(near)
            row.sort(key=lambda i: (key(i), pos[i]))
            for k, i in enumerate(row):
                pos[i] = k
    # x: each node wants the mean x of its real predecessors (a dummy, its
    # predecessor's). In each row the node that heads the longest chain of
    # real layers gets its wish; the others line up beside it, in order,
    # as close to theirs as they can without overlapping.
    chain = [0] * total
    for i in range(total - 1, -1, -1):
        chain[i] = (1 if i < n else 0) + max((chain[j] for j in succ[i]),
                                             default=0)
    x = [0.0] * total
    for row in ranks:
        wanted = []
        for i in row:
            near = pred_all[i]
            real = [j for j in near if j < n] or near
            wanted.append(sum(x[j] for j in real) / len(real) if real
                          else None)
        anchor = max(range(len(row)), key=lambda k: (row[k] < n,
                                                     chain[row[k]], -k))
        x[row[anchor]] = wanted[anchor] if wanted[anchor] is not None else 0
        for k in range(anchor + 1, len(row)):
            i, prev = row[k], row[k - 1]
            least = x[prev] + widths[prev] / 2 + NODE_GAP + widths[i] / 2
            x[i] = max(least, wanted[k]) if wanted[k] is not None else least
        for k in range(anchor - 1, -1, -1):
            i, nxt = row[k], row[k + 1]
            most = x[nxt] - widths[nxt] / 2 - NODE_GAP - widths[i] / 2
            x[i] = min(most, wanted[k]) if wanted[k] is not None else most
    left = min((x[i] - widths[i] / 2 for i in range(total)), default=0)
    for i in range(total):
        x[i] += MARGIN - left
    row_height = [max((heights[i] for i in row), default=0) for row in ranks]
    y_top = []
    y = MARGIN
    for h in row_height:
        y_top.append(y)
        y += max(h, 12) + RANK_GAP
    graph_nodes = []
    for i in range(total):
        top = y_top[all_rank[i]]
        graph_nodes.append(GraphNode(
            id=i, layers=nodes[i] if i < n else [], x=x[i] - widths[i] / 2,
            y=top, width=widths[i], height=heights[i] if i < n else
            row_height[all_rank[i]], dummy=i >= n))
    graph_edges = []
    for s, t, blob, path in chains:
        points = [(x[s], y_top[rank[s]] + heights[s])]
        for d in path[1:-1]:
            node = graph_nodes[d]
            points.append((x[d], node.y))
            points.append((x[d], node.y + node.height))
        points.append((x[t], y_top[rank[t]]))
        graph_edges.append(GraphEdge(s, t, blob, points))
    width = max((x[i] + widths[i] / 2 for i in range(total)),
                default=0) + MARGIN
    return Graph(graph_nodes, graph_edges, width, y - RANK_GAP + MARGIN)
