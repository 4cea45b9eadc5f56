"""Real passages of the codes, as one chunk of the bench index holds them, shared by the grounding tests."""

# Article L222-17 of the Code de justice militaire (its first three paragraphs)
L222_17 = ("Dès l'ouverture de l'audience, l'emploi de tout appareil d'enregistrement ou de diffusion sonore, de "
           "caméra de télévision ou de cinéma, d'appareils photographiques est interdit sous peine d'une amende de "
           "18 000 euros.\n\nToutefois, le président peut ordonner que les débats font l'objet, sous son contrôle, "
           "d'un enregistrement sonore.\n\nLes supports de cet enregistrement sont placés sous scellés et déposés au "
           "greffe du tribunal.")

# Article L255-7 of the Code de justice militaire, the chunk holding its items 3° (from its last words) to 7°
L255_7_END = (
    "ou au juge d'instruction militaire de se faire présenter, à tout moment, sur les lieux de la garde "
    "à vue, la personne qui s'y trouve retenue.\n\n4° Toutefois, ils peuvent déléguer leurs pouvoirs de "
    "contrôle et de prolongation, respectivement, soit au procureur de la République ou au commissaire "
    "du Gouvernement, soit au juge d'instruction, civil ou militaire, dans le ressort duquel la garde à "
    "vue est exercée.\n\n5° Les prolongations mentionnées au 2° ne peuvent intervenir qu'après comparution "
    "de la personne gardée à vue devant le magistrat compétent ou le magistrat par lui délégué.\n\n6° "
    "Toute personne retenue en vertu des dispositions du présent article peut demander à s'entretenir "
    "avec un défenseur à l'issue de la mesure de garde à vue, sauf si les circonstances matérielles s'y "
    "opposent.\n\n7° Au plus tard à l'expiration des délais accordés, les personnes contre lesquelles "
    "existent des indices graves ou concordants de culpabilité doivent être mises en route pour être "
    "présentées, selon le cas, au commissaire du Gouvernement ou au juge d'instruction militaire "
    "compétent."
)

# Article L255-7 of the Code de justice militaire, the chunk holding its lead-in and items 1° to 3°
L255_7_START = (
    "Les officiers de police judiciaire des forces armées et les officiers de police judiciaire civile "
    "se conforment, pour la garde à vue, aux règles et formalités suivantes :\n\n1° Ils peuvent retenir à "
    "leur disposition pendant quarante-huit heures toute personne, militaire ou étrangère aux armées, si "
    "les nécessités de l'enquête l'exigent.\n\n2° Le commissaire du Gouvernement, dans le cadre d'une "
    "enquête préliminaire ou de flagrant délit, et le juge d'instruction militaire, pour l'exécution "
    "d'une commission rogatoire, peuvent, par une autorisation écrite, prolonger de cinq jours le "
    "premier délai. Deux prolongations successives de quatre jours, accordées dans les mêmes conditions, "
    "peuvent porter à quinze jours la durée de la garde à vue.\n\n3° Il appartient, s'ils l'estiment "
    "utile, au commissaire du Gouvernement ou au juge d'instruction militaire de se faire présenter, à "
    "tout moment, sur les lieux de la garde à vue, la personne qui s'y trouve retenue."
)

# Code de justice militaire, L231-3: a number written in words ("un jour franc")
L231_3 = ("Même au cas d'itératif défaut, le condamné et la partie civile ont un délai d'un jour franc après que le "
          "jugement a été porté à leur connaissance pour déclarer au greffe qu'ils se pourvoient en cassation.\n\n"
          "Le commissaire du Gouvernement peut dans le même délai, à compter du prononcé du jugement, déclarer au "
          "greffe qu'il demande la cassation de la décision rendue.")
# Code de la défense, R4221-9 and R4221-18: neighbours of the reserve's contract; only R4221-18 states a duration
R4221_9 = ("Chaque période couvre des services effectifs continus et fait l'objet d'une convocation qui ouvre droit "
           "aux indemnités de déplacement temporaire, à l'aller et au retour, entre le domicile du réserviste et son "
           "lieu d'affectation.\n\nLes services comptent du jour de la mise en route jusqu'à celui du retour du "
           "réserviste à son domicile.")
R4221_18 = ("Sur demande de l'intéressé, l'exécution des obligations nées du contrat d'engagement à servir dans la "
            "réserve opérationnelle peut être suspendue par le ministre de la défense, ou le ministre de l'intérieur "
            "pour les réservistes de la gendarmerie nationale, pour une durée maximum de vingt-quatre mois, sans que "
            "cette décision ait pour effet de différer le terme prévu de l'engagement.")
