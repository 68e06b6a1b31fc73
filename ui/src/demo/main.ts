import { mount } from 'svelte';
import App from '../App.svelte';
import '../app.css';
import { demoBackend } from './demoBackend';

const target = document.getElementById('app');
if (!target) throw new Error('missing #app root element');
const start = location.hash.slice(1);
const backend = demoBackend(start === 'new' || start === 'locked' ? start : 'ready');
(window as unknown as { demo: unknown }).demo = backend;
export default mount(App, { target, props: { backend } });
