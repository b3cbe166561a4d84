// Every package's tests in one run (npm test): each package is a project with its own config, and
// the repository's own tests (test/: the architecture rules) are one more.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      'packages/sdk',
      'packages/tools',
      'packages/server',
      { test: { name: 'repository', include: ['test/**/*.test.ts'], testTimeout: 60_000, pool: 'forks' } },
    ],
  },
});
