// DOM helpers. Server data only ever goes into text nodes and attributes (never innerHTML),
// so a key name or tenant cannot inject markup.
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;
export type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function table(headers: string[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h(
      "tbody",
      {},
      rows.length
        ? rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))
        : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "nothing yet")),
    ),
  );
}

/** A message line that replaces itself (errors in red, with the API's reason). */
export function notice(el: HTMLElement, text: string, kind: "info" | "error" | "ok" = "info"): void {
  el.className = `notice ${kind}`;
  el.textContent = text;
  el.hidden = !text;
}

export function describeError(err: unknown): string {
  if (err && typeof err === "object" && "httpStatus" in err) {
    const e = err as { httpStatus: number; reason?: string; message: string };
    return `${e.httpStatus}${e.reason ? " " + e.reason : ""}: ${e.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function fmtTime(value: string | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function num(value: string | number | undefined): number {
  const n = typeof value === "number" ? value : Number(value ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Copies text; falls back to selecting it when the clipboard is not available. */
export async function copy(text: string, field: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    field.focus();
    field.select();
    return false;
  }
}

/** A download of generated text (CSV) through an object URL, never a data: URL in the page. */
export function download(filename: string, text: string, type = "text/csv"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
