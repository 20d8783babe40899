// The lineage picture: the API's answer laid out in columns by signed distance from the focused dataset
// (upstream to the left, downstream to the right), then drawn as SVG. The layout is a pure function of
// the answer, so the same link always draws the same picture.

const NODE_WIDTH = 210;
const NODE_HEIGHT = 44;
const COLUMN_GAP = 120;
const ROW_GAP = 18;
const MARGIN = 20;
const SVG = "http://www.w3.org/2000/svg";

/// Columns and positions for every node of a lineage answer (`{root, nodes, edges}`).
export function layoutLineage(answer) {
  const rootID = answer.root.dataset_id;
  const byID = new Map(answer.nodes.map((node) => [node.dataset_id, node]));
  const outputsOf = new Map();
  const inputsOf = new Map();
  for (const edge of answer.edges) {
    append(outputsOf, edge.from.dataset_id, edge.to.dataset_id);
    append(inputsOf, edge.to.dataset_id, edge.from.dataset_id);
  }
  // A node's column is its distance upstream (negative) or downstream (positive) of the root, found by
  // walking edges against and along their direction; the API's `distance` has no side.
  const column = new Map([[rootID, 0]]);
  walk(rootID, inputsOf, -1, column);
  walk(rootID, outputsOf, 1, column);
  for (const node of answer.nodes) {
    if (!column.has(node.dataset_id)) column.set(node.dataset_id, node.distance);
  }

  const columns = new Map();
  for (const id of byID.keys()) append(columns, column.get(id), id);
  const order = [...columns.keys()].sort((a, b) => a - b);
  for (const key of order) columns.get(key).sort((a, b) => label(byID.get(a)).localeCompare(label(byID.get(b))));

  // A few barycentre sweeps: each node moves towards the mean row of its neighbours in the column
  // before (then after), which keeps related datasets together and edges short.
  const row = new Map();
  const number = () => { for (const key of order) columns.get(key).forEach((id, index) => row.set(id, index)); };
  number();
  for (let sweep = 0; sweep < 4; sweep++) {
    const forward = sweep % 2 === 0;
    const sequence = forward ? order : [...order].reverse();
    for (const key of sequence) {
      const neighbours = forward ? inputsOf : outputsOf;
      const ids = columns.get(key);
      const weight = new Map(ids.map((id) => {
        const rows = (neighbours.get(id) || []).filter((other) => row.has(other)).map((other) => row.get(other));
        return [id, rows.length ? rows.reduce((sum, value) => sum + value, 0) / rows.length : row.get(id)];
      }));
      ids.sort((a, b) => weight.get(a) - weight.get(b) || row.get(a) - row.get(b));
      ids.forEach((id, index) => row.set(id, index));
    }
  }

  const tallest = Math.max(...order.map((key) => columns.get(key).length));
  const height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP;
  const placed = new Map();
  order.forEach((key, index) => {
    const ids = columns.get(key);
    const columnHeight = ids.length * NODE_HEIGHT + (ids.length - 1) * ROW_GAP;
    const top = (height - columnHeight) / 2;
    ids.forEach((id, position) => {
      placed.set(id, {
        id, node: byID.get(id), column: key, root: id === rootID,
        x: MARGIN + index * (NODE_WIDTH + COLUMN_GAP), y: top + position * (NODE_HEIGHT + ROW_GAP),
      });
    });
  });
  const width = MARGIN * 2 + order.length * NODE_WIDTH + (order.length - 1) * COLUMN_GAP;
  const edges = answer.edges
    .filter((edge) => placed.has(edge.from.dataset_id) && placed.has(edge.to.dataset_id))
    .map((edge) => ({ from: placed.get(edge.from.dataset_id), to: placed.get(edge.to.dataset_id), edge }));
  return { nodes: [...placed.values()], edges, width, height };
}

/// Draws `layout` into a new SVG element. `hrefFor(datasetID)` is each node's link.
export function drawLineage(layout, hrefFor) {
  const svg = element("svg", {
    width: layout.width, height: layout.height, viewBox: `0 0 ${layout.width} ${layout.height}`,
    role: "img", "aria-label": "lineage graph",
  });
  // Several versions of one pair (v1 → v1, v1 → v2) share a curve and one label; each API edge keeps
  // an element of its own, with its versions, job and run.
  const pairs = new Map();
  for (const link of layout.edges) append(pairs, `${link.from.id} ${link.to.id}`, link);
  const edges = element("g", { class: "edges" });
  for (const links of pairs.values()) {
    const { from, to } = links[0];
    const x1 = from.x + NODE_WIDTH, y1 = from.y + NODE_HEIGHT / 2;
    const x2 = to.x, y2 = to.y + NODE_HEIGHT / 2;
    const bend = Math.max(40, (x2 - x1) / 2);
    const group = element("g", { class: "link" });
    group.append(element("path", {
      d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)",
    }));
    const captions = [];
    for (const { edge } of links) {
      const caption = `v${edge.from.version ?? "?"} → v${edge.to.version ?? "?"}` + (edge.job ? ` · ${edge.job.name}` : "");
      if (!captions.includes(caption)) captions.push(caption);
      const one = element("g", {
        class: "edge", "data-from": edge.from.dataset_id, "data-to": edge.to.dataset_id,
        "data-from-version": edge.from.version ?? "", "data-to-version": edge.to.version ?? "",
      });
      const title = element("title");
      title.textContent = caption + (edge.run_id ? ` (run ${edge.run_id})` : "");
      one.append(title);
      group.append(one);
    }
    const text = element("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" });
    text.textContent = captions.length > 2 ? `${captions[0]} +${captions.length - 1} more` : captions.join(", ");
    const title = element("title");
    title.textContent = captions.join("\n");
    group.append(title, text);
    edges.append(group);
  }
  const defs = element("defs");
  const marker = element("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  });
  marker.append(element("path", { d: "M0,0 L10,5 L0,10 z", fill: "#98a3b3" }));
  // A name clipped to 30 characters can still be wider than its box (WWW…): the box clips its text.
  const inBox = element("clipPath", { id: "node-text" });
  inBox.append(element("rect", { x: 4, width: NODE_WIDTH - 8, height: NODE_HEIGHT }));
  defs.append(marker, inBox);

  const nodes = element("g", { class: "nodes" });
  for (const placed of layout.nodes) {
    const node = placed.node;
    const concealed = node.name === undefined;
    const classes = ["node", concealed ? "concealed" : node.status, placed.root ? "root" : ""].filter(Boolean);
    // A dataset of a namespace the token may not see has no page to go to: its box is not a link.
    const link = concealed ? element("g", {}) : element("a", { href: hrefFor(placed.id) });
    const group = element("g", {
      class: classes.join(" "), "data-id": placed.id, "data-status": node.status ?? "",
      "data-version": node.version ?? "", "data-column": placed.column,
      transform: `translate(${placed.x},${placed.y})`,
    });
    group.append(element("rect", { width: NODE_WIDTH, height: NODE_HEIGHT }));
    const name = element("text", { x: 8, y: 18, "clip-path": "url(#node-text)" });
    name.textContent = clip(concealed ? placed.id : `${node.namespace}/${node.name}`, 30);
    const sub = element("text", { x: 8, y: 35, class: "sub", "clip-path": "url(#node-text)" });
    sub.textContent = concealed
      ? "not in your namespaces"
      : `v${node.version ?? "–"} · ${node.status}` + (placed.column ? ` · ${Math.abs(placed.column)} ${placed.column < 0 ? "up" : "down"}` : " · focus");
    const title = element("title");
    title.textContent = concealed ? placed.id : `${node.namespace}/${node.name} (${node.status})`;
    group.append(title, name, sub);
    link.append(group);
    nodes.append(link);
  }
  svg.append(defs, edges, nodes);
  return svg;
}

function walk(start, neighbours, step, column) {
  let frontier = [start];
  let distance = 0;
  while (frontier.length) {
    distance += step;
    const next = [];
    for (const id of frontier) {
      for (const other of neighbours.get(id) || []) {
        if (column.has(other)) continue;
        column.set(other, distance);
        next.push(other);
      }
    }
    frontier = next;
  }
}

function append(map, key, value) {
  const list = map.get(key);
  if (list) list.push(value); else map.set(key, [value]);
}

function label(node) {
  return node.name === undefined ? `~${node.dataset_id}` : `${node.namespace}/${node.name}`;
}

function clip(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

function element(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}
