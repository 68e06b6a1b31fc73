// Asks for the camera, the microphone and both, the way the safety-number scanner asks for
// the camera, and reports each outcome in the document title for the probe to read.
async function ask(constraints) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    stream.getTracks().forEach((t) => t.stop());
    return 'allowed';
  } catch (e) {
    return e.name;
  }
}

(async () => {
  const video = await ask({ video: true });
  const audio = await ask({ audio: true });
  const both = await ask({ video: true, audio: true });
  document.title = `camera-probe video=${video} audio=${audio} both=${both}`;
})();
