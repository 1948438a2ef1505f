// Auto-pagination: every List of API v1 takes page_size and page_token and answers
// next_page_token (empty on the last page). A Paginator walks the pages lazily.

/** One page of a List reply. */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

export type PageFetcher<T> = (pageToken: string | undefined) => Promise<Page<T>>;

/**
 * The items of a List across all its pages, fetched as they are consumed:
 * `for await (const c of client.collections.list()) ...`, or `.pages()`, `.toArray()`.
 */
export class Paginator<T> implements AsyncIterable<T> {
  constructor(private readonly fetchPage: PageFetcher<T>) {}

  /** Each page in order (the first with no token). */
  async *pages(): AsyncGenerator<Page<T>> {
    let token: string | undefined = undefined;
    const seen = new Set<string>();
    for (;;) {
      const page: Page<T> = await this.fetchPage(token);
      yield page;
      if (!page.nextPageToken) return;
      // A server that repeated a token would loop forever; stop instead.
      if (seen.has(page.nextPageToken)) throw new Error(`page token repeated: ${page.nextPageToken}`);
      seen.add(page.nextPageToken);
      token = page.nextPageToken;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for await (const page of this.pages()) yield* page.items;
  }

  /** Every item (all pages); mind the size of what you list. */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }

  /** The first page only. */
  async firstPage(): Promise<Page<T>> {
    return this.fetchPage(undefined);
  }
}
