import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Served by the local runner at /app (and from the CDK stack's bucket behind CloudFront): every
// asset is in the build, none is fetched from elsewhere at run time.
export default defineConfig({
  base: "/app/",
  plugins: [react()],
  resolve: { alias: { "@tenantry/client": decodeURIComponent(new URL("../client/src/index.ts", import.meta.url).pathname) } },
  build: { outDir: "dist", assetsInlineLimit: 0, sourcemap: false },
});
