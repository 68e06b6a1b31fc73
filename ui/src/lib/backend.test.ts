import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.hoisted(() => vi.fn());
vi.mock('@tauri-apps/api/core', () => ({ invoke }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

import { tauriBackend, toUiError } from './backend';

// A block body: a function returned from beforeEach would be run as its teardown.
beforeEach(() => {
  invoke.mockReset();
});

describe('tauri backend', () => {
  it('calls each command by its Rust name with its arguments by name', async () => {
    invoke.mockResolvedValue({ username: 'alice' });
    await tauriBackend().createProfile({
      username: 'alice',
      relay: { kind: 'embedded' },
      pin: null,
      keyStorage: 'passphrase',
      passphrase: 'correct horse',
    });
    expect(invoke).toHaveBeenCalledWith('create_profile', {
      username: 'alice',
      relay: { kind: 'embedded' },
      pin: null,
      keyStorage: 'passphrase',
      passphrase: 'correct horse',
    });
    invoke.mockResolvedValue([]);
    await tauriBackend().messages({ contactId: 'ab', beforeId: 7, limit: 100 });
    expect(invoke).toHaveBeenLastCalledWith('messages', {
      contactId: 'ab',
      beforeId: 7,
      limit: 100,
    });
  });

  it('rejects with the command error as a UiError', async () => {
    invoke.mockImplementation(() =>
      Promise.reject({ code: 'wrong-passphrase', message: 'That passphrase is not correct.' }),
    );
    await expect(tauriBackend().unlock({ passphrase: 'nope' })).rejects.toEqual({
      code: 'wrong-passphrase',
      message: 'That passphrase is not correct.',
    });
  });

  it('turns an image scan that found no code into a no-qr-code error', async () => {
    invoke.mockResolvedValue({ matched: null });
    await expect(tauriBackend().verifyImage({ contactId: 'ab', image: 'iVBO' })).rejects.toEqual({
      code: 'no-qr-code',
      message: '',
    });
    invoke.mockResolvedValue({ matched: false });
    await expect(tauriBackend().verifyImage({ contactId: 'ab', image: 'iVBO' })).resolves.toEqual({
      matched: false,
    });
  });
});

describe('toUiError', () => {
  it('keeps known codes and maps anything else to internal', () => {
    expect(toUiError({ code: 'blocked', message: 'Blocked.' })).toEqual({
      code: 'blocked',
      message: 'Blocked.',
    });
    expect(toUiError({ code: 'from-the-future', message: 'x' })).toEqual({
      code: 'internal',
      message: 'x',
    });
    expect(toUiError('boom')).toEqual({ code: 'internal', message: 'boom' });
  });
});
