import { render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';

const appInfo = vi.fn();
vi.mock('./lib/bindings', () => ({ commands: { appInfo: () => appInfo() } }));

import App from './App.svelte';

describe('first screen', () => {
  it('shows the version the Rust side reports', async () => {
    appInfo.mockResolvedValue({ name: 'Sotto', version: '9.8.7', profileDir: '/p' });
    render(App);
    expect(await screen.findByText('Version 9.8.7')).toBeInTheDocument();
    expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent('Sotto');
  });

  it('says so plainly when the version cannot be read', async () => {
    appInfo.mockImplementation(() => Promise.reject(new Error('ipc down')));
    render(App);
    expect(await screen.findByRole('alert')).toHaveTextContent('could not read its own version');
  });
});
