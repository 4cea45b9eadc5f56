"""Real passages of the codes, as one chunk of the bench index holds them, shared by the grounding tests."""

# Article L222-17 of the Code de justice militaire (its first three paragraphs)
L222_17 = ("Dès l'ouverture de l'audience, l'emploi de tout appareil d'enregistrement ou de diffusion sonore, de "
           "caméra de télévision ou de cinéma, d'appareils photographiques est interdit sous peine d'une amende de "
           "18 000 euros.\n\nToutefois, le président peut ordonner que les débats font l'objet, sous son contrôle, "
           "d'un enregistrement sonore.\n\nLes supports de cet enregistrement sont placés sous scellés et déposés au "
           "greffe du tribunal.")
