// Built into dist/ and served by the auth service at /admin (services/auth/ragline_auth/console.py)
// under a Content-Security-Policy of 'self' only: no inline script or style, nothing from a CDN.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/admin/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inlined assets (data: URLs) and no module-preload polyfill injected inline.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
