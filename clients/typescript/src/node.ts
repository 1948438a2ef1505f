// Node-only helpers (they read files with node:fs): upload a file or every file of a folder.
// Import from "@ragline/client/node"; the main entry point stays browser-safe.
import { readFile, readdir } from "node:fs/promises";
import { basename, extname, join, relative } from "node:path";

import type { Ragline, UploadOptions } from "./client.js";
import type { UploadDocumentResponse } from "./types.js";

export const UPLOAD_EXTENSIONS = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"];

/** Uploads one file (its text is extracted on the server); the filename defaults to its name. */
export async function uploadFile(
  client: Ragline,
  collection: string,
  path: string,
  options: Partial<UploadOptions> = {},
): Promise<UploadDocumentResponse> {
  const data = await readFile(path);
  return client.ingest.file(collection, data, { ...options, filename: options.filename ?? basename(path) });
}

export interface FolderOptions extends Omit<Partial<UploadOptions>, "filename" | "title" | "document_id"> {
  /** Look into subfolders too (default true). */
  recursive?: boolean;
  /** File extensions to upload (default UPLOAD_EXTENSIONS); others are skipped. */
  extensions?: string[];
  /** Called after each file. */
  onFile?: (path: string, result: UploadDocumentResponse) => void;
}

/** Uploads every file of a folder with a known extension, one after another (sorted by path). */
export async function uploadFolder(
  client: Ragline,
  collection: string,
  folder: string,
  options: FolderOptions = {},
): Promise<Map<string, UploadDocumentResponse>> {
  const { recursive = true, extensions = UPLOAD_EXTENSIONS, onFile, ...upload } = options;
  const wanted = new Set(extensions.map((e) => e.toLowerCase()));
  const results = new Map<string, UploadDocumentResponse>();
  for (const path of await listFiles(folder, recursive)) {
    if (!wanted.has(extname(path).toLowerCase())) continue;
    // The relative path as the filename keeps same-named files in different folders apart.
    const result = await uploadFile(client, collection, path, { ...upload, title: relative(folder, path) });
    results.set(path, result);
    onFile?.(path, result);
  }
  return results;
}

async function listFiles(folder: string, recursive: boolean): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory() && recursive) out.push(...(await listFiles(path, recursive)));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}
