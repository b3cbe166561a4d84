// Every package's tests in one run (npm test): each package is a project with its own config.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/sdk', 'packages/tools', 'packages/server'],
  },
});
