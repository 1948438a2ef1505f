// Server-sent events (text/event-stream) parsed from a fetch body, as an async iterator.
// Browser-safe: ReadableStream and TextDecoder only.

export interface ServerSentEvent {
  /** The `event:` field ("message" when absent). */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  id?: string;
}

/** Yields each event of an SSE body; cancels the body when the consumer stops early. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let event = "";
  let id: string | undefined;
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A line ends at \r\n, \n or \r (the spec allows all three); keep a trailing partial
      // line, and a trailing \r whose \n may be in the next chunk.
      const lines = (done ? buffer.replace(/\r$/, "\n") : buffer).split(/\r\n|\n|\r(?!$)/);
      buffer = done ? "" : (lines.pop() ?? "");
      for (const line of lines) {
        if (line === "") {
          if (data.length > 0) {
            const out: ServerSentEvent = { event: event || "message", data: data.join("\n") };
            if (id !== undefined) out.id = id;
            yield out;
          }
          data = [];
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue; // a comment (keep-alive)
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id") id = value;
      }
      if (done) {
        // A last event without its blank line still counts (a proxy may cut the final \n).
        if (data.length > 0) yield { event: event || "message", data: data.join("\n"), ...(id ? { id } : {}) };
        finished = true;
        return;
      }
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
