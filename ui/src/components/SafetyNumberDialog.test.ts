import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { fakeBackend } from '../tests/fakeBackend';
import Harness from '../tests/Harness.svelte';
import SafetyNumberDialog from './SafetyNumberDialog.svelte';

describe('safety number', () => {
  it('shows 12 groups and warns loudly when a scanned code does not match', async () => {
    const backend = fakeBackend({ verifyImage: vi.fn(async () => ({ matched: false })) });
    const onClose = vi.fn();
    render(Harness, {
      backend,
      component: SafetyNumberDialog,
      args: { contactId: 'bb', onClose, onVerificationChanged: vi.fn() },
    });
    expect(await screen.findAllByTestId('safety-group')).toHaveLength(12);
    expect(screen.getByTestId('safety-qr').getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    const file = new File([new Uint8Array([137, 80, 78, 71])], 'code.png', { type: 'image/png' });
    await fireEvent.change(screen.getByTestId('scan-file'), { target: { files: [file] } });
    const result = await screen.findByTestId('verify-result');
    expect(result).toHaveAttribute('role', 'alert');
    expect(result).toHaveTextContent('this may not be the person you think');
    expect(backend.verifyImage).toHaveBeenCalledWith({ contactId: 'bb', image: 'iVBORw==' });
    await fireEvent.keyDown(screen.getByTestId('safety-dialog'), { key: 'Escape' });
    expect(onClose).toHaveBeenCalled();
  });
});
