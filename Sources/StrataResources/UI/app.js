// The Strata web UI. Every view is a link: its whole state is in the URL fragment
// (#/datasets/{id}?tab=lineage&direction=both&depth=3&as_of=1042), so reload, back/forward and a shared
// link all show the same thing. Everything shown comes from the API with the token kept for this
// browser session only; text is always set as text, never parsed as HTML.

import { layoutLineage, drawLineage } from "./lineage.js";

const TOKEN_KEY = "strata.token";
const PAGE_SIZE = 25;
const TABS = ["overview", "versions", "history", "usages", "lineage"];
const VERSION_FIELDS = [
  "owner", "description", "location", "format", "schema", "tags", "row_count", "size_bytes", "properties", "parents",
];
const FORMATS = ["", "parquet", "csv", "json", "avro", "orc", "delta", "iceberg", "webdataset", "table", "other"];

const view = document.getElementById("view");
let caller = null;
let leaveView = () => {};

// ---- The API ----

class Problem extends Error {
  constructor(status, document) {
    super(document.detail || document.title || `HTTP ${status}`);
    this.status = status;
    this.document = document;
  }
}

// While PostgreSQL restarts the server answers 503 with Retry-After: a request asks again for this long
// before the page shows the problem. A write carries an Idempotency-Key of its own, so that asking again
// applies it once.
const RETRY_FOR_MS = 15000;

async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const request = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (token) request.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    request.headers["Content-Type"] ??= "application/json";
    request.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD") request.headers["Idempotency-Key"] ??= idempotencyKey();
  const giveUpAt = Date.now() + RETRY_FOR_MS;
  let response = await fetch(path, request);
  while (response.status === 503) {
    const wait = Math.min(5, Math.max(0.5, Number(response.headers.get("Retry-After")) || 0.5)) * 1000;
    if (Date.now() + wait > giveUpAt || signal?.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, wait));
    response = await fetch(path, request);
  }
  const type = response.headers.get("Content-Type") || "";
  const payload = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new Problem(response.status, typeof payload === "object" ? payload : { title: response.statusText, detail: payload });
  }
  return { body: payload, position: Number(response.headers.get("Strata-Position")), etag: response.headers.get("ETag") };
}

// Random, from getRandomValues: crypto.randomUUID exists only on https and localhost pages.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "strata-ui-" + Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function query(parameters) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ---- Small DOM helpers ----

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const badge = (status) => h("span", { class: `badge ${status}`, "data-status": status }, status);
const when = (text) => (text ? new Date(text).toLocaleString() : "");
const dash = (value) => (value === null || value === undefined || value === "" ? "—" : value);

function problemBox(error) {
  // fetch rejects with a TypeError when no answer came at all.
  const unreachable = error instanceof TypeError && !(error instanceof Problem);
  const document = error instanceof Problem ? error.document
    : unreachable ? { title: "No answer", detail: "the Strata server could not be reached; is it running?" }
    : { title: "Request failed", detail: String(error.message || error) };
  return h("div", { class: "problem", role: "alert", "data-code": document.code || "" },
    h("strong", {}, document.title || "Refused", document.code ? ` (${document.code})` : ""), ": ", document.detail || "",
    document.code === "version_conflict"
      ? h("span", {}, " Someone changed it since this page was loaded: ", h("a", { href: location.hash, onclick: () => render() }, "reload"), " to see what changed, then try again.")
      : null,
    document.errors?.length ? h("ul", {}, document.errors.map((item) => h("li", {}, h("code", {}, item.path || "/"), " ", item.message))) : null);
}

// ---- Routing ----

function currentRoute() {
  const fragment = location.hash.slice(1) || "/";
  const [path, search = ""] = fragment.split("?");
  return { path, parameters: Object.fromEntries(new URLSearchParams(search)) };
}

const linkTo = (path, parameters = {}) => `#${path}${query(parameters)}`;
const datasetLink = (id, parameters = {}) => linkTo(`/datasets/${id}`, parameters);

function go(path, parameters) {
  location.hash = linkTo(path, parameters);
}

let renders = 0;
// The control to give focus back to once the next view is shown (a view is rebuilt on every change).
let refocus = null;

async function render() {
  leaveView();
  leaveView = () => {};
  const { path, parameters } = currentRoute();
  // Each render shows its result only if no newer one started meanwhile (a second click while the
  // first page was loading), so the page always matches the URL. A part that does not apply is null.
  const mine = ++renders;
  const show = (...parts) => {
    if (mine === renders) view.replaceChildren(...parts.filter(Boolean));
  };
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", (link.dataset.nav === "feed") === (path === "/feed"));
  }
  const dataset = path.match(/^\/datasets\/([^/]+)$/);
  document.title = "Strata";
  try {
    if (!caller) await identify();
    if (dataset) await showDataset(show, decodeURIComponent(dataset[1]), parameters);
    else if (path === "/feed") showFeed(show, parameters);
    else if (path === "/") await showCatalog(show, parameters);
    else {
      show(h("div", { class: "card", id: "no-such-page" }, h("h2", {}, "No such page"),
        h("p", {}, "Nothing lives at ", h("code", {}, path), ". ", h("a", { href: linkTo("/") }, "Back to the catalog"), ".")));
    }
  } catch (error) {
    showFailure(show, error);
  }
  if (mine === renders && refocus) {
    document.querySelector(refocus)?.focus();
    refocus = null;
  }
  // Tests and benchmarks wait for this: the view for this URL is complete.
  if (mine === renders) document.body.dataset.view = location.hash;
}

// A token no longer valid (revoked, or never) asks to sign in again; anything else is shown as it came.
function showFailure(show, error) {
  if (error instanceof Problem && error.status === 401) {
    caller = null;
    showSession();
    show(h("div", { class: "card" }, h("h2", {}, "Sign in"),
      h("p", {}, "Paste an API token above (", h("code", {}, "strata token create"), " makes one). It is kept for this browser tab only."),
      problemBox(error)));
  } else {
    show(problemBox(error));
  }
}

// ---- Who is signed in ----

async function identify() {
  caller = (await api("/v1/me")).body;
  showSession();
}

function showSession() {
  const session = document.getElementById("session");
  if (caller) {
    const scope = caller.namespaces.length ? ` in ${caller.namespaces.join(", ")}` : "";
    session.replaceChildren(
      h("span", { id: "caller", "data-role": caller.role }, `${caller.name} · ${caller.role}${scope}`),
      sessionStorage.getItem(TOKEN_KEY)
        ? h("button", { class: "secondary", id: "sign-out", onclick: () => { sessionStorage.removeItem(TOKEN_KEY); caller = null; render(); } }, "Sign out")
        : null);
    return;
  }
  const input = h("input", { type: "password", id: "token", placeholder: "Paste an API token", autocomplete: "off" });
  const form = h("form", { id: "sign-in", onsubmit: (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    render();
  } }, input, " ", h("button", { type: "submit" }, "Use token"));
  session.replaceChildren(form);
}

function mayWrite(namespace) {
  if (!caller || caller.role === "reader") return false;
  return caller.role === "admin" || caller.namespaces.length === 0 || caller.namespaces.includes(namespace);
}

// ---- Catalog ----

async function showCatalog(show, parameters) {
  const filters = {
    namespace: parameters.namespace, status: parameters.status, tag: parameters.tag, owner: parameters.owner,
    q: parameters.q, sort: parameters.sort, as_of: parameters.as_of,
  };
  // Words to look for go to the ranked search (names, columns, tags, owners, descriptions…); without
  // them, the list. Both take the same filters and page the same way.
  const searching = Boolean(filters.q && filters.q.trim());
  document.title = "Catalog · Strata";
  const field = (name, label, attributes = {}) =>
    h("label", {}, label, h("input", { name, value: filters[name] ?? "", ...attributes }));
  const status = h("select", { name: "status" },
    [["", "draft, published"], ["all", "all"], ["draft", "draft"], ["published", "published"], ["archived", "archived"], ["retired", "retired"]]
      .map(([value, text]) => h("option", { value, selected: (filters.status ?? "") === value }, text)));
  const order = h("select", { name: "sort", title: "the order of the list; a search ranks what it finds" },
    [["", "oldest first"], ["-created_at", "newest first"], ["-updated_at", "recently changed"], ["-last_used_at", "recently used"], ["name", "name"]]
      .map(([value, text]) => h("option", { value, selected: (filters.sort ?? "") === value }, text)));
  const form = h("form", { class: "filters", id: "filters", onsubmit: (event) => {
    event.preventDefault();
    go("/", Object.fromEntries(new FormData(form)));
  } },
  field("q", "Search", { placeholder: "a name, column, tag, owner or words of a description" }), field("namespace", "Namespace"), h("label", {}, "Status", status), field("tag", "Tag"),
  field("owner", "Owner"), h("label", {}, "Order", order), field("as_of", "As of (position or time)", { placeholder: "now" }),
  h("button", { type: "submit" }, "Filter"), h("a", { class: "button secondary", href: "#/" }, "Clear"));
  const filterCard = h("div", { class: "card" }, h("h2", {}, "Datasets"), form);

  // A filter refused (an as_of that is not a position or a time, one past the log's end) is shown under
  // the form, where it can be corrected; a token no longer valid signs out as anywhere.
  let answer;
  try {
    answer = await api(searching
      ? `/v1/search${query({ ...filters, sort: undefined, limit: PAGE_SIZE, cursor: parameters.cursor })}`
      : `/v1/datasets${query({ ...filters, q: undefined, limit: PAGE_SIZE, cursor: parameters.cursor })}`);
  } catch (error) {
    if (!(error instanceof Problem) || error.status !== 400) throw error;
    show(filterCard, h("div", { class: "card", id: "filter-refused" }, problemBox(error)));
    return;
  }
  const { body, position } = answer;
  const datasets = searching ? body.results : body.datasets;

  const matched = (dataset) => (dataset.matched ?? []).filter((match) => match.field !== "namespace")
    .map((match) => h("span", { class: "match" }, `${match.field}: ${match.text}`));
  const rows = datasets.map((dataset) => h("tr", { "data-id": dataset.id },
    h("td", {}, h("a", { href: datasetLink(dataset.id, { as_of: filters.as_of }) }, dataset.name)),
    h("td", {}, dataset.namespace), h("td", {}, badge(dataset.status)),
    h("td", { class: "num" }, `v${dataset.latest_version}`), h("td", {}, dash(dataset.owner)),
    h("td", {}, dataset.current.format ?? ""), h("td", {}, dataset.current.tags.map((tag) => h("span", { class: "tag" }, tag))),
    h("td", {}, when(dataset.updated_at)), searching ? h("td", { class: "matched" }, matched(dataset)) : null));
  const titles = ["Name", "Namespace", "Status", "Latest", "Owner", "Format", "Tags", "Updated"].concat(searching ? ["Matched"] : []);
  const table = rows.length
    ? h("table", { id: "datasets", "data-search": searching ? "true" : "false" }, h("thead", {}, h("tr", {}, titles.map((title) => h("th", {}, title)))), h("tbody", {}, rows))
    : h("p", { class: "muted", id: "no-datasets" }, "No dataset matches these filters.");
  const pager = h("div", { class: "pager" },
    parameters.cursor ? h("a", { href: linkTo("/", filters) }, "« First page") : null,
    body.next_cursor ? h("a", { id: "next-page", href: linkTo("/", { ...filters, cursor: body.next_cursor }) }, "Next page »") : null,
    h("span", { class: "muted" }, `as of position ${position}`));
  show(
    asOfBanner(filters.as_of, position, linkTo("/", { ...filters, as_of: undefined })),
    filterCard, h("div", { class: "card" }, table, pager));
}

function asOfBanner(asOf, position, nowLink) {
  if (!asOf) return null;
  return h("div", { class: "asof past", id: "as-of-banner", "data-position": position },
    `Showing the catalog as it was at position ${position}`, asOf !== String(position) ? ` (${asOf})` : "",
    ". Nothing here can be changed. ", h("a", { href: nowLink }, "Back to now"));
}

// ---- One dataset ----

async function showDataset(show, id, parameters) {
  const tab = TABS.includes(parameters.tab) ? parameters.tab : "overview";
  const asOf = parameters.as_of;
  const [{ body: dataset, position, etag }, { body: trail, position: now }] = await Promise.all([
    api(`/v1/datasets/${encodeURIComponent(id)}${query({ as_of: asOf })}`),
    api(`/v1/datasets/${encodeURIComponent(id)}/history`),
  ]);
  const here = (changes) => datasetLink(id, { ...parameters, ...changes });
  document.title = `${dataset.namespace}/${dataset.name} · Strata`;
  const tabs = h("nav", { class: "tabs" }, TABS.map((name) =>
    h("a", { href: here({ tab: name }), class: name === tab ? "active" : "", "aria-current": name === tab ? "page" : undefined,
      "data-tab": name, onclick: (event) => { if (event.currentTarget.getAttribute("href") !== location.hash) refocus = `[data-tab="${name}"]`; } },
    name[0].toUpperCase() + name.slice(1))));
  const header = h("div", { class: "card", id: "dataset", "data-id": dataset.id, "data-status": dataset.status, "data-position": position },
    h("div", { class: "muted" }, h("a", { href: linkTo("/", { namespace: dataset.namespace, as_of: asOf }) }, dataset.namespace)),
    h("h1", {}, dataset.name, " ", badge(dataset.status)),
    h("div", { class: "muted" },
      `latest v${dataset.latest_version}`, dataset.published_version ? ` · published v${dataset.published_version}` : " · never published",
      ` · stream version ${dataset.stream_version} · updated ${when(dataset.updated_at)} by ${dataset.updated_by}`),
    dataset.retired_reason ? h("p", {}, "Retired: ", dataset.retired_reason) : null,
    asOf ? null : actions(dataset, etag),
    timeTravel(trail.events, now, position, asOf, here));
  const body = h("div", { class: "card", id: `tab-${tab}` });
  show(asOfBanner(asOf, position, here({ as_of: undefined })), header, tabs, body);
  const at = { as_of: asOf };
  switch (tab) {
  case "overview":
    if (dataset.latest_version !== dataset.current.version) {
      body.append(h("p", { class: "notice", id: "newer-draft" }, `Draft v${dataset.latest_version} is newer than the version shown, and not published yet: `,
        h("a", { href: here({ tab: "versions" }) }, "see what it changes"), "."));
    }
    body.append(...overview(dataset.current, asOf));
    break;
  case "versions": body.append(...versionTimeline((await api(`/v1/datasets/${id}/versions${query(at)}`)).body.versions, asOf)); break;
  case "history": body.append(auditTrail((await api(`/v1/datasets/${id}/history${query(at)}`)).body.events, here)); break;
  case "usages": body.append(usageTable((await api(`/v1/datasets/${id}/usages${query(at)}`)).body.usages)); break;
  case "lineage": await lineageTab(body, id, parameters, here, dataset.status); break;
  }
}

function timeTravel(events, now, shown, asOf, here) {
  if (!events.length) return null;
  const first = events[0].position;
  const slider = h("input", {
    type: "range", id: "as-of-slider", min: first, max: now, step: 1, value: asOf ? shown : now,
    "aria-label": "as of position",
  });
  const label = h("span", { class: "mono", id: "as-of-label" }, asOf ? `position ${shown}` : `now (${now})`);
  slider.addEventListener("input", () => { label.textContent = `position ${slider.value}`; });
  slider.addEventListener("change", () => {
    const target = here({ as_of: Number(slider.value) >= now ? undefined : slider.value });
    if (target !== location.hash) refocus = "#as-of-slider";
    location.hash = target;
  });
  const markers = events.map((event) => h("a", {
    href: here({ as_of: event.position }), class: asOf && Number(asOf) === event.position ? "current" : "",
    title: `${event.type} by ${event.metadata.actor} at ${when(event.recorded_at)}`,
  }, `${event.position} ${shortType(event.type)}`));
  return h("div", { class: "asof", id: "time-travel" },
    h("div", { class: "timeline" }, h("strong", {}, "Time travel"), slider, label,
      asOf ? h("a", { href: here({ as_of: undefined }) }, "now") : null),
    h("div", { class: "markers" }, markers, h("a", { href: here({ as_of: undefined }), class: asOf ? "" : "current" }, "now")));
}

const shortType = (type) => type.replace(/^Dataset/, "").replace(/^Version/, "");

function overview(version, asOf) {
  const [list, schema, properties] = versionDetails(version, asOf);
  list.id = "fields";
  schema.id = "schema";
  properties.id = "properties";
  return [list, h("h2", {}, "Schema"), schema, h("h2", {}, "Properties"), properties];
}

// A version's fields, schema and properties, without ids: the versions tab shows one per version.
function versionDetails(version, asOf) {
  const fields = [
    ["Version", `v${version.version} (${version.status})`], ["Location", version.location], ["Format", version.format],
    ["Owner", version.owner], ["Description", version.description],
    ["Tags", version.tags.length ? version.tags.map((tag) => h("span", { class: "tag" }, tag)) : null],
    ["Rows", version.row_count?.toLocaleString()], ["Size", version.size_bytes === null ? null : `${version.size_bytes.toLocaleString()} bytes`],
    ["Parents", version.parents.length ? version.parents.map((parent) => h("div", {}, h("a", { href: datasetLink(parent.dataset_id, { tab: "overview", as_of: asOf }) }, parent.dataset_id), ` v${parent.version ?? "current"}`)) : null],
    ["Change note", version.change_note], ["Written", `${when(version.created_at)} by ${version.created_by}`],
  ];
  const list = h("dl", { class: "fields" }, fields.flatMap(([name, value]) => [h("dt", {}, name), h("dd", { "data-field": name.toLowerCase() }, dash(value))]));
  const schema = version.schema.length
    ? h("table", {}, h("thead", {}, h("tr", {}, ["Column", "Type", "Nullable", "Description"].map((title) => h("th", {}, title)))),
      h("tbody", {}, version.schema.map((column) => h("tr", {}, h("td", { class: "mono" }, column.name), h("td", { class: "mono" }, column.type),
        h("td", {}, column.nullable === undefined ? "" : column.nullable ? "yes" : "no"), h("td", {}, column.description ?? "")))))
    : h("p", { class: "muted" }, "No schema yet.");
  const properties = Object.keys(version.properties).length ? h("pre", {}, JSON.stringify(version.properties, null, 2)) : h("p", { class: "muted" }, "No properties.");
  return [list, schema, properties];
}

function versionTimeline(versions, asOf) {
  // Versions come newest first; what changed in each is its difference from the one before it.
  const items = versions.map((version, index) => {
    const previous = versions[index + 1];
    const changed = previous ? VERSION_FIELDS.filter((field) => JSON.stringify(version[field]) !== JSON.stringify(previous[field])) : ["first version"];
    return h("li", { class: version.status, "data-version": version.version },
      h("strong", {}, `v${version.version}`), " ", badge(version.status), " ",
      h("span", { class: "muted" }, `${when(version.created_at)} by ${version.created_by}`),
      h("div", {}, "Changed: ", changed.length ? changed.join(", ") : "nothing"),
      version.change_note ? h("div", { class: "muted" }, `“${version.change_note}”`) : null,
      h("details", {}, h("summary", {}, `Fields of v${version.version}`), ...detailsWithHeadings(version, asOf)));
  });
  return [h("ol", { class: "versions", id: "versions" }, items)];
}

function detailsWithHeadings(version, asOf) {
  const [list, schema, properties] = versionDetails(version, asOf);
  return [list, h("h3", {}, "Schema"), schema, h("h3", {}, "Properties"), properties];
}

function auditTrail(events, here) {
  const rows = events.map((event) => h("tr", { "data-position": event.position },
    h("td", { class: "num" }, h("a", { href: here({ as_of: event.position }), title: "show the catalog as of this event" }, event.position)),
    h("td", {}, event.type), h("td", {}, event.metadata.actor, event.metadata.on_behalf_of ? ` for ${event.metadata.on_behalf_of}` : ""),
    h("td", {}, when(event.recorded_at)), h("td", {}, dash(event.metadata.reason ?? event.data.reason ?? event.data.change_note ?? event.data.version?.change_note)),
    h("td", { class: "mono" }, dash(event.metadata.request_id))));
  return h("table", { id: "history" },
    h("thead", {}, h("tr", {}, ["Position", "Event", "Who", "When", "Why", "Request"].map((title) => h("th", {}, title)))), h("tbody", {}, rows));
}

function usageTable(usages) {
  if (!usages.length) return h("p", { class: "muted", id: "usages" }, "No recorded usage.");
  return h("table", { id: "usages" },
    h("thead", {}, h("tr", {}, ["Consumer", "Version", "Kind", "When", "Recorded by"].map((title) => h("th", {}, title)))),
    h("tbody", {}, usages.map((usage) => h("tr", {}, h("td", {}, usage.consumer), h("td", {}, `v${usage.version}`),
      h("td", {}, dash(usage.kind)), h("td", {}, when(usage.recorded_at)), h("td", {}, usage.recorded_by)))));
}

// ---- Lineage ----

async function lineageTab(container, id, parameters, here, status) {
  const direction = ["upstream", "downstream", "both"].includes(parameters.direction) ? parameters.direction : "both";
  const depth = Math.min(Math.max(Number(parameters.depth) || 3, 1), 100);
  const request = { direction, depth, as_of: parameters.as_of };
  const fetchStarted = performance.now();
  let fetchMs = 0;
  const [{ body: answer }, { body: impact }] = await Promise.all([
    api(`/v1/datasets/${id}/lineage${query(request)}`).then((answer) => {
      fetchMs = performance.now() - fetchStarted;
      return answer;
    }),
    api(`/v1/datasets/${id}/impact${query({ as_of: parameters.as_of })}`),
  ]);
  const directionSelect = h("select", { id: "direction", onchange: (event) => { location.hash = here({ direction: event.target.value }); } },
    ["both", "upstream", "downstream"].map((value) => h("option", { value, selected: value === direction }, value)));
  const depthInput = h("input", { id: "depth", type: "number", min: 1, max: 100, value: depth,
    onchange: (event) => { location.hash = here({ depth: event.target.value }); } });
  const dot = h("button", { class: "secondary", id: "download-dot", onclick: async () => {
    const response = await fetch(`/v1/datasets/${id}/lineage${query({ ...request, format: "dot" })}`, {
      headers: sessionStorage.getItem(TOKEN_KEY) ? { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` } : {},
    });
    const url = URL.createObjectURL(await response.blob());
    h("a", { href: url, download: `lineage-${id}.dot` }).click();
    URL.revokeObjectURL(url);
  } }, "Download DOT");

  const started = performance.now();
  const layout = layoutLineage(answer);
  const svg = drawLineage(layout, (node) => datasetLink(node, { tab: "lineage", direction, depth, as_of: parameters.as_of }));
  const graph = h("div", { class: "graph", id: "lineage" }, svg);
  container.replaceChildren(...[
    h("div", { class: "lineage-controls" }, h("label", {}, "Direction ", directionSelect), h("label", {}, "Depth ", depthInput), dot,
      h("span", { class: "muted" }, `${answer.nodes.length} datasets, ${answer.edges.length} edges`)),
    answer.truncated
      ? h("p", { class: "notice", id: "lineage-truncated" },
        `Only ${answer.depth} of ${depth} levels are shown: the next one has more edges than one answer holds. `
          + "Choose one direction, or open a dataset further along.")
      : null,
    graph,
    h("h2", {}, status === "retired" ? "What depended on this" : "What breaks if this is retired"),
    impact.impact.length
      ? h("table", { id: "impact" }, h("thead", {}, h("tr", {}, ["Dataset", "Status", "Distance"].map((title) => h("th", {}, title)))),
        h("tbody", {}, impact.impact.map((item) => h("tr", { "data-id": item.dataset_id },
          // A dataset of a namespace the token may not see is its id only: there is no page to go to.
          h("td", {}, item.name === undefined ? h("span", { class: "mono" }, item.dataset_id)
            : h("a", { href: datasetLink(item.dataset_id, { as_of: parameters.as_of }) }, `${item.namespace}/${item.name}`)),
          h("td", {}, item.status ? badge(item.status) : "—"), h("td", { class: "num" }, item.distance)))))
      : h("p", { class: "muted", id: "impact" }, "Nothing downstream would break."),
  ].filter(Boolean));
  // Measured once the browser has laid the picture out, for `strata bench ui`.
  svg.getBBox();
  graph.dataset.renderMs = (performance.now() - started).toFixed(1);
  graph.dataset.fetchMs = fetchMs.toFixed(1);
}

// ---- Writes ----

function actions(dataset, etag) {
  if (!mayWrite(dataset.namespace)) return null;
  const result = h("div", { id: "action-result" });
  const panel = h("div", { id: "action-panel" });
  const ifMatch = { "If-Match": etag };
  const run = async (button, work) => {
    button.disabled = true;
    result.replaceChildren();
    try {
      await work();
      render();
    } catch (error) {
      result.replaceChildren(problemBox(error));
      button.disabled = false;
    }
  };
  const post = (action, body) => api(`/v1/datasets/${dataset.id}/${action}`, { method: "POST", body, headers: ifMatch });
  const buttons = [];
  const add = (name, label, handler, style) => buttons.push(h("button", { "data-action": name, class: style, onclick: handler }, label));
  const open = !["archived", "retired"].includes(dataset.status);
  // A patch applies to the latest version, which may be a draft newer than the one shown: the form
  // starts from it, else saving would quietly undo what that draft changed.
  if (open) {
    add("edit", "Edit", async () => {
      result.replaceChildren();
      try {
        const latest = dataset.latest_version === dataset.current.version
          ? dataset.current : (await api(`/v1/datasets/${dataset.id}/versions/${dataset.latest_version}`)).body;
        panel.replaceChildren(editForm(dataset, latest, ifMatch, result));
      } catch (error) {
        result.replaceChildren(problemBox(error));
      }
    });
  }
  if (open && dataset.latest_version !== dataset.published_version) {
    add("publish", `Publish v${dataset.latest_version}`, (event) => run(event.target, () => post("publish", {})));
  }
  if (open) {
    add("archive", "Archive", () => panel.replaceChildren(reasonForm("Archive", "archive-form", false, (reason, button) =>
      run(button, () => post("archive", reason ? { reason } : {})))), "secondary");
  }
  if (dataset.status === "archived") add("restore", "Restore", (event) => run(event.target, () => post("restore", {})));
  if (dataset.status !== "retired") {
    add("retire", "Retire…", () => panel.replaceChildren(reasonForm("Show what breaks", "retire-form", true, async (reason, button) => {
      try {
        const { body } = await post("retire", { reason, dry_run: true });
        panel.replaceChildren(h("div", { class: "panel", id: "retire-confirm" },
          h("p", {}, body.impact.length
            ? `Retiring ${dataset.namespace}/${dataset.name} affects ${body.impact.length} dataset(s) downstream:`
            : "Nothing downstream depends on this dataset."),
          h("ul", { id: "retire-impact" }, body.impact.map((item) => h("li", {}, item.name === undefined ? item.dataset_id : `${item.namespace}/${item.name}`, " ", item.status ? badge(item.status) : null, ` (distance ${item.distance})`))),
          h("button", { class: "danger", "data-action": "confirm-retire", onclick: (event) => run(event.target, () => post("retire", { reason })) }, "Retire for good"),
          " ", h("button", { class: "secondary", onclick: () => panel.replaceChildren() }, "Cancel")));
      } catch (error) {
        result.replaceChildren(problemBox(error));
      }
    })), "danger");
  }
  return h("div", {}, h("div", { class: "actions", id: "actions" }, buttons), result, panel);
}

function reasonForm(label, id, required, submit) {
  const input = h("input", { name: "reason", required, placeholder: required ? "why (required)" : "why (optional)" });
  const button = h("button", { type: "submit" }, label);
  return h("form", { class: "panel", id, onsubmit: (event) => { event.preventDefault(); submit(input.value.trim(), button); } },
    h("label", {}, "Reason", input), button);
}

function editForm(dataset, version, ifMatch, result) {
  const text = (name, label) => h("label", {}, label, h("input", { name, value: version[name] ?? "" }));
  const format = h("select", { name: "format" }, FORMATS.map((value) => h("option", { value, selected: (version.format ?? "") === value }, value || "—")));
  const json = (name, label, value) => h("label", {}, label, h("textarea", { name }, JSON.stringify(value, null, 2)));
  const form = h("form", { class: "panel", id: "edit-form", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    // A merge patch of only what changed: a field the user did not touch is not sent, so it cannot undo
    // another writer's change (and If-Match refuses the edit if anyone wrote since this page was loaded).
    // Touched, not compared: a control may show a value otherwise than it holds (an input drops line
    // breaks, a text area turns CRLF into LF, tags are split on commas), and would always differ.
    const patch = {};
    try {
      for (const name of ["description", "owner", "location"]) {
        const shown = data.get(name);
        if (touched.has(name) && shown !== (version[name] ?? "")) patch[name] = shown.trim() || null;
      }
      const formatValue = data.get("format") || null;
      if (touched.has("format") && formatValue !== (version.format ?? null)) patch.format = formatValue;
      const tags = data.get("tags").split(",").map((tag) => tag.trim()).filter(Boolean);
      if (touched.has("tags") && JSON.stringify(tags) !== JSON.stringify(version.tags)) patch.tags = tags;
      for (const name of ["schema", "properties"]) {
        if (!touched.has(name)) continue;
        const value = JSON.parse(data.get(name));
        if (JSON.stringify(value) !== JSON.stringify(version[name])) patch[name] = value;
      }
    } catch (error) {
      result.replaceChildren(problemBox({ message: `Not valid JSON: ${error.message}` }));
      return;
    }
    const note = data.get("change_note").trim();
    if (note) patch.change_note = note;
    try {
      await api(`/v1/datasets/${dataset.id}`, { method: "PATCH", body: patch, headers: { ...ifMatch, "Content-Type": "application/merge-patch+json" } });
      render();
    } catch (error) {
      result.replaceChildren(problemBox(error));
    }
  } },
  h("p", { class: "muted" }, `Editing v${version.version} (${version.status}); saving makes a new draft version.`),
  h("label", {}, "Description", h("textarea", { name: "description", rows: 3 }, version.description ?? "")),
  text("owner", "Owner"), text("location", "Location"), h("label", {}, "Format", format),
  h("label", {}, "Tags (comma separated)", h("input", { name: "tags", value: version.tags.join(", ") })),
  json("schema", "Schema (JSON)", version.schema), json("properties", "Properties (JSON)", version.properties),
  h("label", {}, "Change note", h("input", { name: "change_note" })),
  h("button", { type: "submit" }, "Save as a new draft"), " ",
  h("button", { type: "button", class: "secondary", onclick: () => form.remove() }, "Cancel"));
  const touched = new Set();
  form.addEventListener("input", (event) => touched.add(event.target.name));
  form.addEventListener("change", (event) => touched.add(event.target.name));
  return form;
}

// ---- Live feed ----

function showFeed(show, parameters) {
  const list = h("div", { id: "feed" });
  const status = h("p", { class: "muted", id: "feed-status" }, "Connecting…");
  show(h("div", { class: "card" }, h("h2", {}, "Live feed"), status, list));
  document.title = "Live feed · Strata";
  const controller = new AbortController();
  leaveView = () => controller.abort();
  start(parameters.after, controller.signal, status, list).catch((error) => {
    if (!controller.signal.aborted) showFailure(show, error);
  });
}

// Without `after` in the link, the feed opens with the last few events, then follows.
async function start(after, signal, status, list) {
  let from = Number(after);
  if (!Number.isInteger(from) || from < 0) {
    const { position } = await api("/v1/events?limit=1", { signal });
    from = Math.max(0, position - 20);
  }
  await follow(from, signal, status, list);
}

async function follow(after, signal, status, list) {
  const headers = { Accept: "text/event-stream", "Last-Event-ID": String(after) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  // A refusal to open (a token revoked since the page loaded) is the view's failure, as for any request.
  const response = await fetch("/v1/events/stream", { headers, signal });
  if (!response.ok) {
    const text = await response.text();
    let document;
    try { document = JSON.parse(text); } catch { document = { title: response.statusText, detail: text }; }
    throw new Problem(response.status, document);
  }
  status.textContent = "Following the log; newest first.";
  try {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
        if (data) showEvent(JSON.parse(data), list, signal);
      }
    }
  } catch (error) {
    if (!signal.aborted) status.replaceChildren(problemBox(error));
    return;
  }
  // The server ends a feed when it shuts down, and when the token is revoked: a revoked token signs out.
  try {
    await api("/v1/me", { signal });
  } catch (error) {
    if (error instanceof Problem && error.status === 401) throw error;
  }
  status.textContent = "The server closed the feed; reload to follow again.";
}

// Each dataset's name, as the feed learns it: from its creation, else asked once (a failed ask is not
// kept, so a later event asks again). At most as many as the feed shows rows.
const feedNames = new Map();

function feedName(event, signal) {
  if (event.data.namespace && event.data.name) feedNames.set(event.stream_id, Promise.resolve(`${event.data.namespace}/${event.data.name}`));
  if (!feedNames.has(event.stream_id)) {
    const asked = api(`/v1/datasets/${event.stream_id}`, { signal }).then(({ body }) => `${body.namespace}/${body.name}`);
    asked.catch(() => feedNames.delete(event.stream_id));
    feedNames.set(event.stream_id, asked);
  }
  while (feedNames.size > 500) feedNames.delete(feedNames.keys().next().value);
  return feedNames.get(event.stream_id).catch(() => event.stream_id);
}

function showEvent(event, list, signal) {
  const isDataset = event.type.startsWith("Dataset") || event.type === "LineageRecorded";
  const target = isDataset ? h("a", { href: datasetLink(event.stream_id, { as_of: event.position }) }, event.stream_id) : event.stream_id;
  if (isDataset) feedName(event, signal).then((name) => { target.textContent = name; });
  list.prepend(h("div", { class: "feed-row", "data-position": event.position },
    h("span", { class: "mono" }, event.position), h("span", {}, event.type), h("span", {}, event.metadata.actor), h("span", {}, target)));
  while (list.childElementCount > 500) list.lastElementChild.remove();
}

window.addEventListener("hashchange", render);
render();
