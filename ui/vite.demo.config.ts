// Builds demo.html (the UI on in-memory demo data) into dist-demo/ for looking at it in a browser.
import { defineConfig, mergeConfig } from 'vite';
import base from './vite.config';

export default mergeConfig(
  base,
  defineConfig({
    build: { outDir: 'dist-demo', rollupOptions: { input: 'demo.html' } },
  }),
);
